"""Pod sandboxes: a pod's net, ipc and uts namespaces pinned as files, plus its shared dirs.

Layout under ``<root>/pods/<pod_uid>/``::

    sandbox.json          what was asked for (name, hostname, dns)
    ns/{net,ipc,uts}      bind mounts of the namespaces (no pause process keeps them)
    etc/hosts, etc/resolv.conf, etc/hostname   bind-mounted into every container
    volumes/<name>/       emptyDir volumes, shared by the pod's containers
    shm/                  a tmpfs mounted here, bound onto every container's /dev/shm

The namespaces are created by the launcher (a fork); unpinning them is a plain
umount2 on the host, which the runtime may do from asyncio. The pod's /dev/shm is one
tmpfs per pod, as Docker and Kubernetes share IPC within a pod: POSIX shared memory
and semaphores (files under /dev/shm) written by one container are seen by the others
of the pod, as System V IPC is through the shared ipc namespace. It goes with the pod.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtime import syscalls as sc

NAMESPACES = ("net", "ipc", "uts")
SHM_SIZE = "65536k"  # Docker's default --shm-size, and what a Kubernetes pod gets


class SandboxError(Exception):
    """Creating, loading or removing a pod sandbox failed."""


@dataclass(frozen=True)
class Sandbox:
    pod_uid: str
    name: str
    hostname: str
    dir: Path
    dns_servers: list[str] = field(default_factory=list)
    dns_searches: list[str] = field(default_factory=list)
    hosts_entries: list[tuple[str, str]] = field(default_factory=list)

    def ns_path(self, kind: str) -> Path:
        """The pinned namespace file, e.g. ``ns_path("net")`` for pyroute2's NetNS or ``ip netns``."""
        return self.dir / "ns" / kind

    @property
    def netns_path(self) -> Path:
        return self.ns_path("net")

    def volume_dir(self, name: str) -> Path:
        """The host dir of emptyDir ``name`` (created on first use)."""
        if "/" in name or name in ("", ".", ".."):
            raise SandboxError(f"invalid volume name {name!r} in pod {self.name}")
        path = self.dir / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def shm_path(self) -> Path:
        """The pod's shared /dev/shm (a tmpfs) on the host."""
        return self.dir / "shm"

    def etc_mounts(self) -> list[tuple[str, str]]:
        """(host file, container path) pairs every container of the pod gets, read-only."""
        return [(str(self.dir / "etc" / f), f"/etc/{f}") for f in ("hosts", "resolv.conf", "hostname")]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["dir"] = str(self.dir)
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Sandbox:
        obj = dict(obj)
        obj["dir"] = Path(obj["dir"])
        obj["hosts_entries"] = [tuple(e) for e in obj.get("hosts_entries") or []]
        return cls(**obj)


def prepare(sandbox: Sandbox) -> None:
    """Create the pod's dirs and /etc files (before the launcher pins its namespaces)."""
    try:
        (sandbox.dir / "ns").mkdir(parents=True, exist_ok=True)
        (sandbox.dir / "volumes").mkdir(exist_ok=True)
        etc = sandbox.dir / "etc"
        etc.mkdir(exist_ok=True)
        hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        hosts += [f"{ip}\t{name}" for ip, name in sandbox.hosts_entries]
        (etc / "hosts").write_text("\n".join(hosts) + "\n")
        (etc / "resolv.conf").write_text(_resolv_conf(sandbox))
        (etc / "hostname").write_text(sandbox.hostname + "\n")
        (sandbox.dir / "sandbox.json").write_text(json.dumps(sandbox.to_json()))
        sandbox.shm_path.mkdir(exist_ok=True)
        sc.mount("shm", str(sandbox.shm_path), "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
                 f"mode=1777,size={SHM_SIZE}")
    except OSError as e:
        raise SandboxError(f"failed to prepare the directory of pod {sandbox.name}: {e}") from e


def _resolv_conf(sandbox: Sandbox) -> str:
    if not sandbox.dns_servers:
        # Like Docker with default networking: the host's resolver configuration.
        try:
            return Path("/etc/resolv.conf").read_text()
        except OSError:
            return ""
    lines = [f"nameserver {s}" for s in sandbox.dns_servers]
    if sandbox.dns_searches:
        lines.append("search " + " ".join(sandbox.dns_searches))
    return "\n".join(lines) + "\n"


def load(pod_dir: Path) -> Sandbox:
    try:
        return Sandbox.from_json(json.loads((pod_dir / "sandbox.json").read_text()))
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise SandboxError(f"failed to load sandbox from {pod_dir}: {e}") from e


def destroy(sandbox: Sandbox) -> None:
    """Unpin the namespaces, unmount the pod's /dev/shm and delete the pod dir; idempotent."""
    for kind, path in [*((k, sandbox.ns_path(k)) for k in NAMESPACES), ("/dev/shm", sandbox.shm_path)]:
        try:
            sc.umount2(str(path), sc.MNT_DETACH)
        except OSError as e:
            if e.errno not in (2, 22):  # ENOENT: never made; EINVAL: not (or no longer) a mount
                raise SandboxError(f"failed to unmount {kind} of pod {sandbox.name}: {e}") from e
    shutil.rmtree(sandbox.dir, ignore_errors=True)
