"""What the kubelet asks for: a container spec, already merged with its image config."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from runtime.cgroups import Resources


@dataclass(frozen=True)
class Mount:
    """A bind mount: ``source`` on the host (an emptyDir from ``Sandbox.volume_dir`` or a
    hostPath) onto ``destination`` inside the container."""

    source: str
    destination: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """One container of a pod.

    ``lowerdirs`` are the image's unpacked layers, top-most first, exactly as overlayfs's
    ``lowerdir=`` option orders them. ``user`` is ``uid[:gid]`` or ``name[:group]``,
    resolved in the container's own /etc/passwd and /etc/group; empty means root.
    """

    name: str
    argv: list[str]
    lowerdirs: list[str]
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = "/"
    user: str = ""
    mounts: list[Mount] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    log_path: str | None = None  # default: <root>/containers/<id>/container.log
    # Overlay upper and work dirs (same filesystem); default: under the container's dir.
    # Set by builds that keep a RUN step's changes as a layer.
    upperdir: str | None = None
    overlay_workdir: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ContainerSpec:
        return cls(
            name=obj["name"], argv=list(obj["argv"]), lowerdirs=list(obj["lowerdirs"]),
            env=dict(obj.get("env") or {}), working_dir=obj.get("working_dir") or "/",
            user=obj.get("user") or "", mounts=[Mount(**m) for m in obj.get("mounts") or []],
            resources=Resources(**(obj.get("resources") or {})), log_path=obj.get("log_path"),
            upperdir=obj.get("upperdir"), overlay_workdir=obj.get("overlay_workdir"),
        )
