"""ClusterIPs and NodePorts for Services, allocated in etcd.

Each address or port in use is one key, written in the same etcd transaction as the Service
that takes it and deleted in the same transaction as the write that frees it
(`Storage.create/update/delete(claims=..., releases=...)`):

    /kubelite/allocations/serviceips/10.43.0.10   -> kube-system/kube-dns
    /kubelite/allocations/nodeports/30080          -> default/web

so the state survives API server restarts, and two API servers can never hand out the same
one: the second transaction finds the key present and fails (`ClaimTaken`). A value the
client asked for that is taken is a 422 naming the field; a value this server picked is
picked again. The keys live outside /registry/, so the watch cache never sees them (they
change only in revisions that also change a Service, which it does see).

As in Kubernetes (KEP-3070), the lowest addresses of the range (at least 16, at most 256) form
a static band that dynamic allocation uses only when the rest is full, so that well-known
addresses (10.43.0.1 for `kubernetes`, 10.43.0.10 for `kube-dns`) stay free for the objects that
ask for them.

`carry_over` is Kubernetes' patchAllocatedValues + dropTypeDependentFields: an update that
leaves `clusterIP` or a `nodePort` empty keeps the allocated one (kubectl replace, apply), and
a NodePort Service turned ClusterIP drops the node ports it no longer may have.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from api.meta import StatusCause
from api.validation import invalid_error
from apiserver.storage import Storage

PREFIX = "/kubelite/allocations/"
IPS = PREFIX + "serviceips/"
PORTS = PREFIX + "nodeports/"
NODE_PORT_TYPES = ("NodePort", "LoadBalancer")
DEFAULT_CLUSTER_IP_RANGE = "10.43.0.0/16"
DEFAULT_NODE_PORT_RANGE = (30000, 32767)


def parse_port_range(text: str) -> tuple[int, int]:
    """`30000-32767` -> (30000, 32767); ValueError on anything else."""
    low, _, high = text.partition("-")
    first, last = int(low), int(high or low)
    if not 0 < first <= last <= 65535:
        raise ValueError(f"invalid port range {text!r}")
    return first, last


@dataclass
class Plan:
    """What a Service write takes and frees."""

    claims: list[tuple[str, bytes]] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)
    # Claims this server picked itself (retry with another pick if taken) rather than the client.
    picked: set[str] = field(default_factory=set)


def _needs_cluster_ip(spec: dict[str, Any]) -> bool:
    return spec.get("type", "ClusterIP") != "ExternalName" and spec.get("clusterIP") != "None"


def _needs_node_ports(spec: dict[str, Any]) -> bool:
    if spec.get("type") == "NodePort":
        return True
    return spec.get("type") == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False


def held(svc: dict[str, Any]) -> list[str]:
    """The allocation keys a stored Service holds."""
    spec = svc.get("spec") or {}
    keys = []
    if _needs_cluster_ip(spec) and spec.get("clusterIP"):
        keys.append(IPS + spec["clusterIP"])
    keys += sorted({PORTS + str(p["nodePort"]) for p in spec.get("ports") or [] if p.get("nodePort")})
    return keys


def carry_over(old: dict[str, Any], new: dict[str, Any]) -> None:
    """Keep allocated values an update leaves empty; drop node ports a ClusterIP Service may not
    have. Changes `new` in place, before validation."""
    old_spec, spec = old.get("spec") or {}, new.get("spec") or {}
    if _needs_cluster_ip(old_spec) and _needs_cluster_ip(spec) and not spec.get("clusterIP") \
            and not spec.get("clusterIPs"):
        for key in ("clusterIP", "clusterIPs"):
            if key in old_spec:
                spec[key] = old_spec[key]
    old_ports = old_spec.get("ports") or []

    def old_node_port(port: dict[str, Any]) -> int | None:
        for p in old_ports:
            if p.get("port") == port.get("port") and p.get("protocol", "TCP") == port.get("protocol", "TCP"):
                return p.get("nodePort")
        return None

    for port in spec.get("ports") or []:
        if _needs_node_ports(spec) and _needs_node_ports(old_spec) and not port.get("nodePort"):
            carried = old_node_port(port)
            if carried:
                port["nodePort"] = carried
        elif not _needs_node_ports(spec) and port.get("nodePort") and port.get("nodePort") == old_node_port(port):
            del port["nodePort"]
    if not _needs_node_ports(spec) and spec.get("type") != "LoadBalancer":
        for key in ("externalTrafficPolicy", "healthCheckNodePort"):
            if key in spec and spec[key] == old_spec.get(key):
                del spec[key]
    new["spec"] = spec


class ServiceAllocator:
    """Picks and checks ClusterIPs and NodePorts; the write itself claims them (see module doc)."""

    def __init__(self, storage: Storage, *, cluster_ip_range: str = DEFAULT_CLUSTER_IP_RANGE,
                 node_port_range: tuple[int, int] = DEFAULT_NODE_PORT_RANGE) -> None:
        self.storage = storage
        self.network = ipaddress.IPv4Network(cluster_ip_range)
        self.node_ports = node_port_range
        size = self.network.num_addresses
        self._static_band = min(max(16, size // 16), 256)

    def ip(self, offset: int) -> str:
        """The range's address at `offset` (1 is `kubernetes`, 10 is `kube-dns`)."""
        return str(self.network.network_address + offset)

    async def plan(self, svc: dict[str, Any], old: dict[str, Any] | None) -> Plan:
        """Fill in this Service's ClusterIP and NodePorts (in place) and say what the write claims
        and releases; 422 for a requested value that is out of range, taken, or changed."""
        meta, spec = svc["metadata"], svc.setdefault("spec", {})
        owner = f"{meta.get('namespace')}/{meta['name']}".encode()
        old_held = set(held(old)) if old is not None else set()
        plan = Plan()
        causes: list[StatusCause] = []
        if old is not None:
            self._check_immutable(old.get("spec") or {}, spec, causes)
        if _needs_cluster_ip(spec):
            await self._cluster_ip(spec, old_held, plan, causes, owner)
        if _needs_node_ports(spec):
            await self._node_ports(spec, old_held, plan, causes, owner)
        if causes:
            raise invalid_error("Service", "", meta["name"], causes)
        plan.releases = sorted(old_held - set(held(svc)))
        return plan

    @staticmethod
    def _check_immutable(old: dict[str, Any], new: dict[str, Any], causes: list[StatusCause]) -> None:
        if _needs_cluster_ip(old) and old.get("clusterIP") and new.get("type", "ClusterIP") != "ExternalName" \
                and new.get("clusterIP") != old.get("clusterIP"):
            causes.append(StatusCause(reason="FieldValueInvalid", field="spec.clusterIPs[0]",
                                      message=f'Invalid value: "{new.get("clusterIP")}": may not change once set'))
        if old.get("clusterIP") == "None" and new.get("clusterIP") not in (None, "None") \
                and new.get("type", "ClusterIP") != "ExternalName":
            causes.append(StatusCause(reason="FieldValueInvalid", field="spec.clusterIPs[0]",
                                      message=f'Invalid value: "{new.get("clusterIP")}": may not change once set'))

    async def _cluster_ip(self, spec: dict[str, Any], old_held: set[str], plan: Plan, causes: list[StatusCause],
                          owner: bytes) -> None:
        wanted = spec.get("clusterIP")
        if wanted:
            if IPS + wanted in old_held:
                return
            problem = self._ip_problem(wanted)
            if problem:
                causes.append(StatusCause(reason="FieldValueInvalid", field="spec.clusterIPs",
                                          message=f'Invalid value: ["{wanted}"]: failed to allocate IP {wanted}: '
                                                  f"{problem}"))
                return
            plan.claims.append((IPS + wanted, owner))
            return
        taken = {k.removeprefix(IPS) for k in await self.storage.keys(IPS)}
        ip = self._pick_ip(taken)
        if ip is None:
            causes.append(StatusCause(reason="FieldValueInvalid", field="spec.clusterIPs",
                                      message=f"Invalid value: []: failed to allocate IP: range {self.network} "
                                              "is full"))
            return
        spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
        plan.claims.append((IPS + ip, owner))
        plan.picked.add(IPS + ip)

    def _ip_problem(self, wanted: str) -> str:
        address = ipaddress.IPv4Address(wanted)  # validation made sure it is one
        if address not in self.network or address in (self.network.network_address,
                                                      self.network.broadcast_address):
            return (f"the provided IP ({wanted}) is not in the valid range. The range of valid IPs is "
                    f"{self.network}")
        return ""

    def _pick_ip(self, taken: set[str]) -> str | None:
        size = self.network.num_addresses
        upper = range(self._static_band + 1, size - 1)
        lower = range(1, min(self._static_band + 1, size - 1))
        for band in (upper, lower):
            free = self._random_free(band, lambda offset: self.ip(offset) in taken)
            if free is not None:
                return self.ip(free)
        return None

    async def _node_ports(self, spec: dict[str, Any], old_held: set[str], plan: Plan, causes: list[StatusCause],
                          owner: bytes) -> None:
        low, high = self.node_ports
        ports = spec.get("ports") or []
        claimed: set[int] = set()
        for i, port in enumerate(ports):
            wanted = port.get("nodePort")
            if not wanted:
                continue
            key = PORTS + str(wanted)
            if not low <= wanted <= high:
                causes.append(StatusCause(reason="FieldValueInvalid", field=f"spec.ports[{i}].nodePort",
                                          message=f"Invalid value: {wanted}: provided port is not in the valid "
                                                  f"range. The range of valid ports is {low}-{high}"))
            elif key not in old_held and wanted not in claimed:
                plan.claims.append((key, owner))
            claimed.add(wanted)
        missing = [p for p in ports if not p.get("nodePort")]
        if not missing:
            return
        taken = {int(k.removeprefix(PORTS)) for k in await self.storage.keys(PORTS)} | claimed
        for port in missing:
            free = self._random_free(range(low, high + 1), lambda n: n in taken)
            if free is None:
                causes.append(StatusCause(reason="FieldValueInvalid", field="spec.ports",
                                          message=f"Invalid value: []: failed to allocate a node port: range "
                                                  f"{low}-{high} is full"))
                return
            port["nodePort"] = free
            taken.add(free)
            plan.claims.append((PORTS + str(free), owner))
            plan.picked.add(PORTS + str(free))

    @staticmethod
    def _random_free(candidates: range, is_taken: Any) -> int | None:
        """A random free value of `candidates`: a few random probes, then a scan from a random start."""
        if not candidates:
            return None
        for _ in range(16):
            value = random.choice(candidates)
            if not is_taken(value):
                return value
        start = random.randrange(len(candidates))
        for i in range(len(candidates)):
            value = candidates[(start + i) % len(candidates)]
            if not is_taken(value):
                return value
        return None


def taken_error(svc: dict[str, Any], keys: Iterable[str]) -> Exception:
    """The 422 for requested values another Service holds, naming each field."""
    causes = []
    ports = (svc.get("spec") or {}).get("ports") or []
    for key in keys:
        if key.startswith(IPS):
            ip = key.removeprefix(IPS)
            causes.append(StatusCause(reason="FieldValueInvalid", field="spec.clusterIPs",
                                      message=f'Invalid value: ["{ip}"]: failed to allocate IP {ip}: provided IP '
                                              "is already allocated"))
        else:
            number = int(key.removeprefix(PORTS))
            for i, port in enumerate(ports):
                if port.get("nodePort") == number:
                    causes.append(StatusCause(reason="FieldValueInvalid", field=f"spec.ports[{i}].nodePort",
                                              message=f"Invalid value: {number}: provided port is already "
                                                      "allocated"))
                    break
    return invalid_error("Service", "", svc["metadata"]["name"], causes)
