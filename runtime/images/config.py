"""The image configuration: what a container of the image starts with.

`ImageConfig` is the typed view of the OCI config blob's `config` section plus
the rootfs diff_ids and history. Pulled configs are stored byte for byte, so
their digest never changes; only a build re-encodes a config (canonical JSON),
and keys this view does not model are not carried into the built image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from runtime.images.errors import ImageError
from runtime.images.oci import canonical_json


class ConfigError(ImageError):
    """An image config blob that does not parse."""


@dataclass(frozen=True)
class ImageConfig:
    """Runtime defaults of an image. Lists are never None: empty means unset."""

    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    diff_ids: tuple[str, ...] = ()
    history: tuple[dict[str, Any], ...] = ()
    created: str = ""
    architecture: str = "amd64"
    os: str = "linux"

    @property
    def env_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out

    def with_env(self, key: str, value: str) -> ImageConfig:
        env = [e for e in self.env if e.partition("=")[0] != key]
        env.append(f"{key}={value}")
        return replace(self, env=tuple(env))

    @property
    def argv(self) -> list[str]:
        """What a container runs by default: entrypoint followed by cmd."""
        return list(self.entrypoint or ()) + list(self.cmd or ())

    def to_json(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {}
        if self.env:
            cfg["Env"] = list(self.env)
        if self.entrypoint is not None:
            cfg["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            cfg["Cmd"] = list(self.cmd)
        if self.working_dir:
            cfg["WorkingDir"] = self.working_dir
        if self.user:
            cfg["User"] = self.user
        if self.exposed_ports:
            cfg["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.volumes:
            cfg["Volumes"] = {v: {} for v in self.volumes}
        if self.labels:
            cfg["Labels"] = dict(self.labels)
        if self.stop_signal:
            cfg["StopSignal"] = self.stop_signal
        out: dict[str, Any] = {
            "architecture": self.architecture,
            "os": self.os,
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": list(self.diff_ids)},
        }
        if self.history:
            out["history"] = [dict(h) for h in self.history]
        if self.created:
            out["created"] = self.created
        return out

    def encode(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def parse(cls, data: bytes) -> ImageConfig:
        try:
            obj = json.loads(data)
            cfg = obj.get("config") or {}
            rootfs = obj.get("rootfs") or {}

            def opt_list(key: str) -> tuple[str, ...] | None:
                value = cfg.get(key)
                return None if value is None else tuple(str(v) for v in value)

            return cls(
                env=tuple(cfg.get("Env") or ()),
                entrypoint=opt_list("Entrypoint"),
                cmd=opt_list("Cmd"),
                working_dir=str(cfg.get("WorkingDir") or ""),
                user=str(cfg.get("User") or ""),
                exposed_ports=tuple(sorted(cfg.get("ExposedPorts") or {})),
                volumes=tuple(sorted(cfg.get("Volumes") or {})),
                labels=dict(cfg.get("Labels") or {}),
                stop_signal=str(cfg.get("StopSignal") or ""),
                diff_ids=tuple(rootfs.get("diff_ids") or ()),
                history=tuple(obj.get("history") or ()),
                created=str(obj.get("created") or ""),
                architecture=str(obj.get("architecture") or "amd64"),
                os=str(obj.get("os") or "linux"),
            )
        except (ValueError, TypeError, AttributeError) as err:
            raise ConfigError(f"invalid image config: {err}") from err
