"""What the scheduler knows about one pod and one node, precomputed once.

`PodInfo` holds what every plugin needs from a pod (requests, host ports, owner)
so that the filter loop, which runs once per (pod, node) pair, never re-parses a
quantity. `NodeInfo` is a node plus the pods the scheduler counts on it (bound *and*
assumed ones) and the sums the filters compare against allocatable.

Invariants:

- both types are immutable; `NodeInfo.with_pod` / `without_pod` / `with_node`
  return new objects, so a `Snapshot` taken from the cache can never change under a
  scheduling cycle, and a NodeInfo can be shared by many snapshots (the mappings
  inside are plain dicts, typed read-only: a MappingProxy would make every
  copy-on-write go through the slow Python mapping protocol);
- `requested`, `non_zero_requested`, `used_ports` and `owner_counts` are always
  exactly the sums over `pods` (the property tests check this);
- the `Pod` and `Node` objects inside are read-only (they may come from an
  informer cache); nothing here mutates them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from api.core import Node, Pod, ResourceRequirements, Taint
from api.quantity import cpu_millis, to_bytes

__all__ = [
    "DEFAULT_MEMORY_REQUEST",
    "DEFAULT_MILLI_CPU_REQUEST",
    "HostPort",
    "NodeInfo",
    "PodInfo",
    "Resources",
    "pod_key",
]

# Scoring counts a pod that requests nothing as if it asked for this much, so that
# "least allocated" still spreads best-effort pods (Kubernetes uses the same values).
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

# (host IP, protocol, port); "0.0.0.0" stands for every address of the node.
HostPort = tuple[str, str, int]
_ANY_IP = "0.0.0.0"


@dataclass(frozen=True, slots=True)
class Resources:
    """CPU in millicores and memory in bytes."""

    milli_cpu: int = 0
    memory: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.milli_cpu + other.milli_cpu, self.memory + other.memory)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.milli_cpu - other.milli_cpu, self.memory - other.memory)

    @classmethod
    def from_map(cls, values: Mapping[str, str] | None) -> Resources:
        if not values:
            return cls()
        cpu = values.get("cpu")
        memory = values.get("memory")
        return cls(_millis(cpu) if cpu is not None else 0, _integer(memory) if memory is not None else 0)

    def max(self, other: Resources) -> Resources:
        return Resources(max(self.milli_cpu, other.milli_cpu), max(self.memory, other.memory))


# Exact quantity parsing goes through Fractions (tens of microseconds); the replicas of
# one workload repeat the same few strings, so a small cache removes it from the hot path.
@functools.lru_cache(maxsize=4096)
def _millis(text: str) -> int:
    return cpu_millis(text)


@functools.lru_cache(maxsize=4096)
def _integer(text: str) -> int:
    return to_bytes(text)


def pod_key(pod: Pod) -> str:
    return f"{pod.metadata.namespace or 'default'}/{pod.metadata.name}"


def _requests(res: ResourceRequirements | None) -> Resources:
    # Kubernetes defaults requests to limits when only limits are given.
    if res is None:
        return Resources()
    requests = dict(res.limits or {})
    requests.update(res.requests or {})
    return Resources.from_map(requests)


def pod_requests(pod: Pod) -> Resources:
    """What a pod reserves on its node, as Kubernetes computes it.

    Regular containers run together, so their requests add up; init containers run
    one at a time before them, so the pod needs the largest of "every regular
    container" and "each init container". Sidecars (init containers with
    restartPolicy Always) keep running, so they add to both. Pod-level
    `spec.resources`, when set, replaces the per-container sum; `overhead` is added.
    """
    spec = pod.spec
    if spec.resources is not None and (spec.resources.requests or spec.resources.limits):
        total = _requests(spec.resources)
    else:
        sidecars = Resources()
        init_peak = Resources()
        for init in spec.init_containers or []:
            req = _requests(init.resources)
            if init.restart_policy == "Always":
                sidecars = sidecars + req
                init_peak = init_peak.max(sidecars)
            else:
                init_peak = init_peak.max(sidecars + req)
        regular = Resources()
        for container in spec.containers:
            regular = regular + _requests(container.resources)
        total = (regular + sidecars).max(init_peak)
    if spec.overhead:
        total = total + Resources.from_map(spec.overhead)
    return total


def _non_zero(requests: Resources) -> Resources:
    return Resources(
        requests.milli_cpu or DEFAULT_MILLI_CPU_REQUEST,
        requests.memory or DEFAULT_MEMORY_REQUEST,
    )


def pod_host_ports(pod: Pod) -> tuple[HostPort, ...]:
    """Host ports a pod binds; with hostNetwork every container port is a host port."""
    ports: list[HostPort] = []
    host_network = bool(pod.spec.host_network)
    for container in [*(pod.spec.init_containers or []), *pod.spec.containers]:
        for port in container.ports or []:
            number = port.host_port or (port.container_port if host_network else 0)
            if number > 0:
                ports.append((port.host_ip or _ANY_IP, port.protocol or "TCP", number))
    return tuple(ports)


def ports_conflict(a: HostPort, b: HostPort) -> bool:
    """Same protocol and port, and the addresses overlap (0.0.0.0 overlaps everything)."""
    return a[1] == b[1] and a[2] == b[2] and (a[0] == b[0] or _ANY_IP in (a[0], b[0]))


@dataclass(frozen=True, slots=True)
class PodInfo:
    """A pod with the values every plugin needs, computed once per pod version."""

    key: str
    uid: str
    pod: Pod
    requests: Resources
    non_zero_requests: Resources
    host_ports: tuple[HostPort, ...]
    owner_uid: str | None  # the controller ownerReference, used for spreading

    @classmethod
    def from_pod(cls, pod: Pod) -> PodInfo:
        requests = pod_requests(pod)
        ref = pod.metadata.controller_ref()
        return cls(
            key=pod_key(pod),
            uid=pod.metadata.uid or "",
            pod=pod,
            requests=requests,
            non_zero_requests=_non_zero(requests),
            host_ports=pod_host_ports(pod),
            owner_uid=ref.uid if ref is not None else None,
        )

    @property
    def node_name(self) -> str | None:
        return self.pod.spec.node_name


def _counted(counts: Mapping[str, int], key: str, delta: int) -> dict[str, int]:
    out = dict(counts)
    value = out.get(key, 0) + delta
    if value:
        out[key] = value
    else:
        out.pop(key, None)
    return out


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node and the pods counted against it. Immutable: updates return a new NodeInfo.

    `node` is None for a "ghost" entry: pods the watch reported on a node the cache has
    not seen (yet, or any more). Ghosts are never offered to the filters.
    """

    name: str
    node: Node | None = None
    pods: Mapping[str, PodInfo] = field(default_factory=dict)
    requested: Resources = Resources()
    non_zero_requested: Resources = Resources()
    used_ports: tuple[HostPort, ...] = ()
    owner_counts: Mapping[str, int] = field(default_factory=dict)
    # Derived from `node` by with_node(), so the filters read plain attributes.
    allocatable: Resources = Resources()
    allowed_pods: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False
    ready: str = "Unknown"  # status of the Ready condition: "True", "False" or "Unknown"

    @classmethod
    def for_node(cls, node: Node) -> NodeInfo:
        return cls(name=node.metadata.name or "").with_node(node)

    def with_node(self, node: Node | None) -> NodeInfo:
        if node is None:
            return replace(self, node=None)
        status = node.status
        alloc = (status.allocatable or status.capacity) if status else None
        ready_cond = status.condition("Ready") if status else None
        pods_quantity = (alloc or {}).get("pods")
        return replace(
            self,
            node=node,
            allocatable=Resources.from_map(alloc),
            # Like Kubernetes, a node that declares no pod capacity takes no pods.
            allowed_pods=_integer(pods_quantity) if pods_quantity is not None else 0,
            labels=dict(node.metadata.labels or {}),
            taints=tuple(node.spec.taints or []) if node.spec else (),
            unschedulable=bool(node.spec and node.spec.unschedulable),
            ready=ready_cond.status if ready_cond is not None else "Unknown",
        )

    def with_pod(self, info: PodInfo) -> NodeInfo:
        """This node with `info` counted; a pod already counted is replaced, not doubled."""
        base = self.without_pod(info.key) if info.key in self.pods else self
        pods = dict(base.pods)
        pods[info.key] = info
        owners = base.owner_counts
        if info.owner_uid:
            owners = _counted(owners, info.owner_uid, 1)
        return replace(
            base,
            pods=pods,
            requested=base.requested + info.requests,
            non_zero_requested=base.non_zero_requested + info.non_zero_requests,
            used_ports=base.used_ports + info.host_ports,
            owner_counts=owners,
        )

    def without_pod(self, key: str) -> NodeInfo:
        info = self.pods.get(key)
        if info is None:
            return self
        pods = dict(self.pods)
        del pods[key]
        ports = list(self.used_ports)
        for port in info.host_ports:
            ports.remove(port)
        owners = self.owner_counts
        if info.owner_uid:
            owners = _counted(owners, info.owner_uid, -1)
        return replace(
            self,
            pods=pods,
            requested=self.requested - info.requests,
            non_zero_requested=self.non_zero_requested - info.non_zero_requests,
            used_ports=tuple(ports),
            owner_counts=owners,
        )
