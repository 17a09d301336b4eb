"""The kubelet's Node: registration, status (capacity, conditions, addresses), Lease heartbeat.

    machine facts (/proc, statvfs) --> node_conditions (pure) --> Node status  (PUT /status)
    every `lease_renew` s ----------------------------------> Lease renewTime (kube-node-lease)

Registration creates the Node, or adopts an existing one (a restarted kubelet, or a node the
controllers already know) keeping its spec (podCIDR, taints) and merging our labels.
Conditions are written when one changes status and at least every `status_report`
seconds; the Lease is the cheap heartbeat the node lifecycle controller watches.
`lastTransitionTime` only moves when a condition's status changes.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.base import now as api_now
from api.client import Client
from api.coordination import Lease, LeaseSpec
from api.core import (
    DaemonEndpoint,
    Namespace,
    Node,
    NodeAddress,
    NodeCondition,
    NodeDaemonEndpoints,
    NodeStatus,
    NodeSystemInfo,
)
from api.errors import AlreadyExists, Conflict, Forbidden, NotFound
from api.meta import ObjectMeta
from runtime.images.store import ImageSummary

LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = "v1.30.0-kubelite"
MAX_PODS = 110


@dataclass(frozen=True, slots=True)
class MachineStats:
    cpus: int
    memory_total: int  # bytes
    memory_available: int
    disk_total: int  # bytes of the filesystem holding the root dir
    disk_available: int
    pids: int  # processes now
    pid_max: int


@dataclass(frozen=True, slots=True)
class Thresholds:
    memory_available: int = 100 << 20  # Kubernetes' default hard eviction: memory.available<100Mi
    disk_available_fraction: float = 0.10  # nodefs.available<10%
    pid_fraction: float = 0.90


def read_machine(root_dir: Path) -> MachineStats:
    mem: dict[str, int] = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                mem[key] = int(parts[0]) * 1024
    vfs = os.statvfs(root_dir if root_dir.exists() else "/")
    pids = sum(1 for d in os.listdir("/proc") if d.isdigit())
    try:
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        pid_max = 32768
    return MachineStats(cpus=os.cpu_count() or 1, memory_total=mem.get("MemTotal", 0),
                        memory_available=mem.get("MemAvailable", mem.get("MemFree", 0)),
                        disk_total=vfs.f_blocks * vfs.f_frsize, disk_available=vfs.f_bavail * vfs.f_frsize,
                        pids=pids, pid_max=pid_max)


def capacity(stats: MachineStats) -> dict[str, str]:
    return {"cpu": str(stats.cpus), "memory": f"{stats.memory_total // 1024}Ki", "pods": str(MAX_PODS),
            "ephemeral-storage": f"{stats.disk_total // 1024}Ki"}


def node_conditions(stats: MachineStats, previous: Sequence[NodeCondition], *, now: datetime, runtime_ok: bool = True,
                    limits: Thresholds = Thresholds()) -> list[NodeCondition]:
    """The four node conditions from machine facts (pure); transition times kept when unchanged."""
    mem = stats.memory_available < limits.memory_available
    disk = stats.disk_total > 0 and stats.disk_available < stats.disk_total * limits.disk_available_fraction
    pid = stats.pids > stats.pid_max * limits.pid_fraction
    wanted = [
        ("MemoryPressure", mem, "KubeletHasInsufficientMemory" if mem else "KubeletHasSufficientMemory",
         "kubelet has memory pressure" if mem else "kubelet has sufficient memory available"),
        ("DiskPressure", disk, "KubeletHasDiskPressure" if disk else "KubeletHasNoDiskPressure",
         "kubelet has disk pressure" if disk else "kubelet has no disk pressure"),
        ("PIDPressure", pid, "KubeletHasInsufficientPID" if pid else "KubeletHasSufficientPID",
         "kubelet has insufficient PID available" if pid else "kubelet has sufficient PID available"),
        ("Ready", runtime_ok, "KubeletReady" if runtime_ok else "KubeletNotReady",
         "kubelet is posting ready status" if runtime_ok else "container runtime is down"),
    ]
    old = {c.type: c for c in previous}
    out = []
    for type_, flag, reason, message in wanted:
        status = "True" if flag else "False"
        before = old.get(type_)
        since = before.last_transition_time if before is not None and before.status == status else now
        out.append(NodeCondition(type=type_, status=status, reason=reason, message=message,
                                 last_heartbeat_time=now, last_transition_time=since))
    return out


MAX_IMAGES = 50  # Kubernetes' nodeStatusMaxImages


def node_images(images: Iterable[ImageSummary], *, limit: int = MAX_IMAGES) -> list[dict[str, Any]]:
    """`status.images` (pure): one entry per image (tags sharing a manifest are one image), its
    names (every tag, and `repo@digest`) and sizeBytes, largest first, at most `limit`, as the
    kubelet reports them."""
    by_digest: dict[str, tuple[set[str], int]] = {}
    for img in images:
        names, _ = by_digest.setdefault(img.manifest_digest, (set(), img.size))
        repo = img.key.rsplit(":", 1)[0] if ":" in img.key.rsplit("/", 1)[-1] else img.key
        names |= {img.key, f"{repo}@{img.manifest_digest}"}
    ordered = sorted(((size, sorted(names, key=lambda n: ("@" in n, n))) for names, size in by_digest.values()),
                     key=lambda item: (-item[0], item[1][0]))
    return [{"names": names, "sizeBytes": size} for size, names in ordered[:limit]]


def conditions_changed(a: Sequence[NodeCondition], b: Sequence[NodeCondition]) -> bool:
    return {c.type: c.status for c in a} != {c.type: c.status for c in b}


def node_ip_guess() -> str:
    """The address the default route leaves from (no packet is sent), else loopback."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("198.51.100.1", 9))
        return str(s.getsockname()[0])
    return "127.0.0.1"


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip('"')
    return "Linux"


def arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def desired_node(name: str, *, node_ip: str, port: int, stats: MachineStats, labels: dict[str, str]) -> Node:
    cap = capacity(stats)
    return Node(
        metadata=ObjectMeta(name=name, labels={"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                               "kubernetes.io/arch": arch(), **labels}),
        status=NodeStatus(
            capacity=cap, allocatable=dict(cap), phase="Running",
            addresses=[NodeAddress(type="InternalIP", address=node_ip), NodeAddress(type="Hostname", address=name)],
            daemon_endpoints=NodeDaemonEndpoints(kubelet_endpoint=DaemonEndpoint(port=port)),
            node_info=NodeSystemInfo(
                machine_id=_read("/etc/machine-id"), system_uuid=_read("/sys/class/dmi/id/product_uuid"),
                boot_id=_read("/proc/sys/kernel/random/boot_id"), kernel_version=os.uname().release,
                os_image=_os_image(), container_runtime_version="kubelite://0.1.0",
                kubelet_version=KUBELET_VERSION, kube_proxy_version="", operating_system="linux",
                architecture=arch()),
        ),
    )


class NodeAgent:
    """Registers the Node and keeps its status and Lease fresh (one instance per kubelet)."""

    def __init__(self, client: Client, name: str, *, node_ip: str, port: int, root_dir: Path,
                 labels: dict[str, str] | None = None, lease_duration: int = 40,
                 images: Callable[[], list[dict[str, Any]]] | None = None) -> None:
        self.client = client
        self.name = name
        self.node_ip = node_ip
        self.port = port
        self.root_dir = root_dir
        self.labels = labels or {}
        self.lease_duration = lease_duration
        self.images = images  # status.images, read at every status check
        self.node: Node | None = None
        self._last_report = 0.0

    def _desired(self) -> Node:
        return desired_node(self.name, node_ip=self.node_ip, port=self.port, stats=read_machine(self.root_dir),
                            labels=self.labels)

    async def register(self) -> Node:
        want = self._desired()
        try:
            node = await self.client.create(want)
        except AlreadyExists:
            node = await self.client.get(Node, self.name)
            labels = {**(node.metadata.labels or {}), **(want.metadata.labels or {})}
            if labels != node.metadata.labels:
                fresh = node.copy_deep()
                fresh.metadata.labels = labels
                node = await self.client.update(fresh)
        self.node = node
        await self.update_status(force=True)
        # The API server creates kube-node-lease at start; a secured one forbids nodes to create
        # namespaces, so Forbidden here means "not ours to make", not a failure.
        with contextlib.suppress(AlreadyExists, Forbidden):
            await self.client.create(Namespace(metadata=ObjectMeta(name=LEASE_NAMESPACE)))
        await self.renew_lease()
        return self.node

    async def update_status(self, *, force: bool = False, runtime_ok: bool = True, report_every: float = 60) -> None:
        """Write the node status if a condition changed, `force`, or `report_every` s passed."""
        import time

        for _ in range(3):
            current = await self.client.get(Node, self.name)
            want = self._desired()
            assert want.status is not None
            old = (current.status.conditions if current.status else None) or []
            want.status.conditions = node_conditions(read_machine(self.root_dir), old, now=api_now(),
                                                     runtime_ok=runtime_ok)
            current_images = current.status.images if current.status else None
            want.status.images = self.images() if self.images is not None else current_images
            due = time.monotonic() - self._last_report >= report_every
            if not (force or due or conditions_changed(old, want.status.conditions)
                    or (want.status.images or []) != (current_images or [])):
                self.node = current
                return
            fresh = current.copy_deep()
            fresh.status = want.status
            try:
                self.node = await self.client.update_status(fresh)
                self._last_report = time.monotonic()
                return
            except Conflict:
                continue

    async def renew_lease(self) -> None:
        renew = datetime.now(UTC)
        spec = LeaseSpec(holder_identity=self.name, lease_duration_seconds=self.lease_duration, renew_time=renew)
        try:
            await self.client.patch(Lease, self.name, {"spec": spec.to_dict()}, namespace=LEASE_NAMESPACE)
        except NotFound:
            lease = Lease(metadata=ObjectMeta(name=self.name, namespace=LEASE_NAMESPACE), spec=spec)
            if self.node is not None and self.node.metadata.uid:
                from api.meta import OwnerReference

                lease.metadata.owner_references = [OwnerReference(api_version="v1", kind="Node", name=self.name,
                                                                  uid=self.node.metadata.uid)]
            with contextlib.suppress(AlreadyExists):
                await self.client.create(lease)
