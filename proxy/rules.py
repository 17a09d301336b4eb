"""Services + EndpointSlices -> the desired state of ``table ip kubelite-svc`` (pure).

The table, in the shape of kube-proxy's nftables mode (KEP-3866), written from scratch:

    map service-ips        clusterIP . proto . port   : goto svc-/svl- chain  (nat, every packet's first)
    map service-nodeports  proto . nodePort            : goto ext- chain       (for `fib daddr type local`)
    map no-endpoint-services / no-endpoint-nodeports   : goto reject / drop    (filter, before DNAT)
    chain svc-<h>   every usable endpoint:  [masq mark for non-pod sources of the ClusterIP]
                    [ip saddr @aff-<e> goto ep-<e>]...  numgen random mod N vmap { i : goto ep-<e> }
                    or, when no endpoint needs a chain of its own (no affinity, all in the cluster
                    CIDR):  ip saddr { endpoints } masq mark (hairpin);
                            dnat ip to numgen random mod N map { i : ip . port }
    chain svl-<h>   the same over this node's endpoints only (internal/externalTrafficPolicy Local)
    chain ext-<h>   NodePort entry: Cluster -> masq mark, goto svc-; Local -> pods and the node
                    itself go to svc- (the node's own masqueraded), other clients to svl- unmasqueraded
    chain ep-<e>    (affinity, or endpoints outside the cluster CIDR) [masq mark if saddr is the
                    endpoint (hairpin), always if the endpoint is outside the cluster CIDR]
                    [update @aff-<e> { ip saddr }]  dnat to ip:port
    set aff-<e>     ClientIP affinity: clients that chose this endpoint, each for timeoutSeconds

Invariants:
- One *fragment* per Service: every chain, set and map element it owns, named from stable hashes
  of (namespace, name, port name, protocol) and the endpoint, so the same objects always give the
  same names and an endpoint change of one Service touches only that Service's fragment.
- A fragment never references a chain or set of another fragment; the base chains (hooks) only
  reference the maps. So fragments can be added, changed and removed independently.
- "Usable" endpoints: the ready ones; when none is ready, the serving and terminating ones (a
  draining pod still answers rather than the Service refusing), as kube-proxy does.
- A service port without usable endpoints gets a no-endpoint element (reject at once: TCP reset,
  ICMP port unreachable) instead of a nat element; reject is a filter verdict, never in nat chains.
- ExternalName and headless Services (clusterIP None) produce no fragment.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from api.services import SERVICE_NAME_LABEL, EndpointSlice, Service

TABLE = "kubelite-svc"
MASQ_MARK = 0x4000  # packet mark: masquerade in postrouting (then cleared)
SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
NO_EP_SERVICES = "no-endpoint-services"
NO_EP_NODEPORTS = "no-endpoint-nodeports"
MAPS = (SERVICE_IPS, SERVICE_NODEPORTS, NO_EP_SERVICES, NO_EP_NODEPORTS)
DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds, the API's default for ClientIP


@dataclass(frozen=True)
class Context:
    """What the translation needs to know about the node it runs on."""

    node_name: str
    cluster_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.43.0.0/16"


@dataclass(frozen=True, order=True)
class Backend:
    ip: str
    port: int
    node_name: str | None = None


@dataclass(frozen=True)
class Flow:
    """Conntrack entries a backend can own: original destination (None: any local address, a
    NodePort) and port, translated to ``ep_ip``."""

    protocol: str  # tcp | udp
    orig_dst: str | None
    orig_port: int
    ep_ip: str


@dataclass
class Fragment:
    """Everything one Service owns in the table."""

    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> rules
    sets: dict[str, int] = field(default_factory=dict)  # affinity set name -> timeout seconds
    elements: dict[tuple[str, str], str] = field(default_factory=dict)  # (map, key) -> verdict
    flows: frozenset[Flow] = frozenset()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fragment) and (self.chains, self.sets, self.elements, self.flows) == (
            other.chains, other.sets, other.elements, other.flows)


def _hash(*parts: object) -> str:
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()
    return digest[:10]


def chain_suffix(namespace: str, name: str, port_name: str, protocol: str) -> str:
    readable = "-".join(p for p in (namespace, name, port_name, protocol.lower()) if p)
    return f"{_hash(namespace, name, port_name, protocol)}-{readable}"[:120]


def service_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def slice_service_key(es: EndpointSlice) -> str | None:
    """The Service a slice belongs to, by its `kubernetes.io/service-name` label."""
    name = (es.metadata.labels or {}).get(SERVICE_NAME_LABEL)
    return service_key(es.metadata.namespace or "default", name) if name else None


def _ipv4(value: str | None) -> str | None:
    try:
        return str(ipaddress.IPv4Address(value)) if value else None
    except ValueError:
        return None


def backends(slices: Iterable[EndpointSlice], *, port_name: str, protocol: str) -> tuple[list[Backend], list[Backend]]:
    """(ready, serving-and-terminating) backends of one service port, sorted and deduplicated."""
    ready: set[Backend] = set()
    draining: set[Backend] = set()
    for es in slices:
        if es.address_type != "IPv4":
            continue
        port = next((p.port for p in es.ports or [] if (p.name or "") == port_name
                     and (p.protocol or "TCP") == protocol and p.port), None)
        if port is None:
            continue
        for ep in es.endpoints:
            ip = _ipv4(ep.addresses[0] if ep.addresses else None)
            if ip is None:
                continue
            cond = ep.conditions
            is_ready = cond is None or cond.ready is None or cond.ready
            serving = cond is None or (cond.serving if cond.serving is not None else is_ready)
            terminating = bool(cond and cond.terminating)
            backend = Backend(ip, port, ep.node_name)
            if is_ready and not terminating:
                ready.add(backend)
            elif serving and terminating:
                draining.add(backend)
    return sorted(ready), sorted(draining - ready)


def usable(ready: list[Backend], draining: list[Backend]) -> list[Backend]:
    return ready or draining


def _mark() -> str:
    return f"meta mark set meta mark | {MASQ_MARK:#x}"


def _dispatch(eps: list[tuple[str, Backend]], affinity: bool) -> list[str]:
    """Rules choosing an endpoint chain: affinity lookups first, then a uniform random pick."""
    rules = [f"ip saddr @aff-{h} goto ep-{h}" for h, _ in eps] if affinity else []
    if len(eps) == 1:
        rules.append(f"goto ep-{eps[0][0]}")
    else:
        picks = ", ".join(f"{i} : goto ep-{h}" for i, (h, _) in enumerate(eps))
        rules.append(f"numgen random mod {len(eps)} vmap {{ {picks} }}")
    return rules


def _direct(eps: list[Backend], proto: str) -> list[str]:
    """No chain per endpoint: hairpin mark for any endpoint as source, then DNAT through an
    anonymous numgen map. Used when no endpoint needs rules of its own (no affinity, all inside
    the cluster CIDR): it keeps the table's chain count near one per service port, and nft's
    cache (fetched on every transaction) with it."""
    sources = ", ".join(b.ip for b in eps)
    rules = [f"ip saddr {{ {sources} }} {_mark()}" if len(eps) > 1 else f"ip saddr {sources} {_mark()}"]
    if len(eps) == 1:
        rules.append(f"meta l4proto {proto} dnat to {eps[0].ip}:{eps[0].port}")
    else:
        picks = ", ".join(f"{i} : {b.ip} . {b.port}" for i, b in enumerate(eps))
        rules.append(f"meta l4proto {proto} dnat ip to numgen random mod {len(eps)} map {{ {picks} }}")
    return rules


def translate(svc: Service, slices: Iterable[EndpointSlice], ctx: Context) -> Fragment | None:
    """The fragment of one Service (None: it gets no rules)."""
    spec = svc.spec
    if spec.type == "ExternalName":
        return None
    cluster_ip = _ipv4(spec.cluster_ip) if spec.cluster_ip != "None" else None
    if spec.cluster_ip == "None":
        return None
    ns, name = svc.metadata.namespace or "default", svc.metadata.name or ""
    slices = list(slices)
    cidr = ipaddress.ip_network(ctx.cluster_cidr)
    affinity = spec.session_affinity == "ClientIP"
    timeout = DEFAULT_AFFINITY_TIMEOUT
    if affinity and spec.session_affinity_config and spec.session_affinity_config.client_ip:
        timeout = spec.session_affinity_config.client_ip.timeout_seconds or DEFAULT_AFFINITY_TIMEOUT
    node_ports = spec.type in ("NodePort", "LoadBalancer")
    frag = Fragment()
    flows: set[Flow] = set()
    for sp in spec.ports or []:
        protocol = (sp.protocol or "TCP").upper()
        if protocol not in ("TCP", "UDP"):
            continue
        proto = protocol.lower()
        port_name = sp.name or ""
        suffix = chain_suffix(ns, name, port_name, protocol)
        ready, draining = backends(slices, port_name=port_name, protocol=protocol)
        all_eps = usable(ready, draining)
        local_eps = usable([b for b in ready if b.node_name == ctx.node_name],
                           [b for b in draining if b.node_name == ctx.node_name])
        internal_local = spec.internal_traffic_policy == "Local"
        external_local = spec.external_traffic_policy == "Local"
        needed = set(local_eps if internal_local else all_eps) if cluster_ip else set()
        if node_ports and sp.node_port:
            needed |= set(all_eps) | (set(local_eps) if external_local else set())
        # Endpoint chains only where an endpoint needs rules of its own: its affinity set, or a
        # masquerade because it lies outside the cluster CIDR.
        chained = affinity or any(ipaddress.ip_address(b.ip) not in cidr for b in needed)
        hashes = {b: f"{_hash(suffix, b.ip, b.port)}-{suffix}"[:120] for b in sorted(needed)} if chained else {}
        for b, h in hashes.items():
            rules = []
            if ipaddress.ip_address(b.ip) not in cidr:
                rules.append(_mark())  # the endpoint cannot route replies to pod addresses
            else:
                rules.append(f"ip saddr {b.ip} {_mark()}")  # hairpin
            if affinity:
                frag.sets[f"aff-{h}"] = timeout
                rules.append(f"update @aff-{h} {{ ip saddr }}")
            rules.append(f"meta l4proto {proto} dnat to {b.ip}:{b.port}")
            frag.chains[f"ep-{h}"] = tuple(rules)

        def pick(eps: list[Backend]) -> list[str]:
            return _dispatch([(hashes[b], b) for b in eps], affinity) if chained else _direct(eps, proto)  # noqa: B023

        cluster_chain = f"svc-{suffix}"
        local_chain = f"svl-{suffix}"
        masq_outside = (f"ip daddr {cluster_ip} ip saddr != {ctx.cluster_cidr} {_mark()}",) if cluster_ip else ()
        node_port = sp.node_port if node_ports else None
        if all_eps and ((cluster_ip and not internal_local) or node_port):
            frag.chains[cluster_chain] = (*masq_outside, *pick(all_eps))
        if local_eps and (internal_local or external_local):
            frag.chains[local_chain] = (*(masq_outside if internal_local else ()),
                                        *pick(local_eps))
        if cluster_ip:
            key = f"{cluster_ip} . {proto} . {sp.port}"
            eps = local_eps if internal_local else all_eps
            if eps:
                frag.elements[(SERVICE_IPS, key)] = f"goto {local_chain if internal_local else cluster_chain}"
            else:
                frag.elements[(NO_EP_SERVICES, key)] = "goto reject-chain" if not all_eps else "drop"
            flows |= {Flow(proto, cluster_ip, sp.port, b.ip) for b in eps}
        if node_port:
            key = f"{proto} . {node_port}"
            ext = f"ext-{suffix}"
            if not all_eps:
                frag.elements[(NO_EP_NODEPORTS, key)] = "goto reject-chain"
                continue
            if external_local:
                frag.chains[ext] = (f"ip saddr {ctx.cluster_cidr} goto {cluster_chain}",
                                    f"fib saddr type local {_mark()} goto {cluster_chain}",
                                    f"goto {local_chain}" if local_eps else "drop")
            else:
                frag.chains[ext] = (_mark(), f"goto {cluster_chain}")
            frag.elements[(SERVICE_NODEPORTS, key)] = f"goto {ext}"
            flows |= {Flow(proto, None, node_port, b.ip) for b in all_eps}
    frag.flows = frozenset(flows)
    return frag if frag.chains or frag.elements else None


def base_chains(ctx: Context) -> str:
    """The hook chains and maps: they reference only the maps, never a Service's chains."""
    mark = f"{MASQ_MARK:#x}"
    return (
        f"    map {SERVICE_IPS} {{ type ipv4_addr . inet_proto . inet_service : verdict; }}\n"
        f"    map {SERVICE_NODEPORTS} {{ type inet_proto . inet_service : verdict; }}\n"
        f"    map {NO_EP_SERVICES} {{ type ipv4_addr . inet_proto . inet_service : verdict; }}\n"
        f"    map {NO_EP_NODEPORTS} {{ type inet_proto . inet_service : verdict; }}\n"
        "    chain reject-chain {\n"
        "        meta l4proto tcp reject with tcp reset\n"
        "        reject\n"
        "    }\n"
        "    chain endpoints-check {\n"
        f"        ip daddr . meta l4proto . th dport vmap @{NO_EP_SERVICES}\n"
        f"        meta l4proto . th dport @{NO_EP_NODEPORTS} fib daddr type local "
        f"meta l4proto . th dport vmap @{NO_EP_NODEPORTS}\n"
        "    }\n"
        "    chain filter-prerouting {\n"
        "        type filter hook prerouting priority dstnat - 10; policy accept;\n"
        # NodePorts on 127.0.0.1 need route_localnet: never accept 127/8 from the network.
        '        iifname != "lo" ip daddr 127.0.0.0/8 ct state new drop\n'
        "        ct state new jump endpoints-check\n"
        "    }\n"
        "    chain filter-output {\n"
        "        type filter hook output priority -110; policy accept;\n"
        "        ct state new jump endpoints-check\n"
        "    }\n"
        "    chain services {\n"
        f"        ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}\n"
        # the map as a set first: the route lookup (fib) only for packets to a NodePort
        f"        meta l4proto . th dport @{SERVICE_NODEPORTS} fib daddr type local "
        f"meta l4proto . th dport vmap @{SERVICE_NODEPORTS}\n"
        "    }\n"
        "    chain nat-prerouting {\n"
        "        type nat hook prerouting priority dstnat; policy accept;\n"
        "        jump services\n"
        "    }\n"
        "    chain nat-output {\n"
        "        type nat hook output priority -100; policy accept;\n"
        "        jump services\n"
        "    }\n"
        "    chain nat-postrouting {\n"
        "        type nat hook postrouting priority srcnat; policy accept;\n"
        f"        meta mark & {mark} == 0 return\n"
        f"        meta mark set meta mark ^ {mark}\n"
        "        masquerade fully-random\n"
        "    }\n"
    )


def _set_decl(name: str, timeout: int) -> str:
    return f"set {name} {{ type ipv4_addr; flags dynamic,timeout; timeout {timeout}s; }}"


def full_text(ctx: Context, fragments: Iterable[Fragment]) -> str:
    """The whole table, rebuilt in one transaction (``add`` first so that ``delete`` cannot fail).

    Chains are declared before any rule or element references them."""
    frags = list(fragments)
    out = [f"add table ip {TABLE}\n", f"delete table ip {TABLE}\n", f"table ip {TABLE} {{\n", base_chains(ctx)]
    for frag in frags:
        out += [f"    {_set_decl(name, t)}\n" for name, t in frag.sets.items()]
        out += [f"    chain {name} {{ }}\n" for name in frag.chains]
    out.append("}\n")
    for frag in frags:
        for name, rules in frag.chains.items():
            out += [f"add rule ip {TABLE} {name} {rule}\n" for rule in rules]
    seen: set[tuple[str, str]] = set()  # a key claimed twice (never by allocation): the first wins
    for frag in frags:
        for (m, k), v in frag.elements.items():
            if (m, k) not in seen:
                seen.add((m, k))
                out.append(f"add element ip {TABLE} {m} {{ {k} : {v} }}\n")
    return "".join(out)


def teardown_text() -> str:
    return f"add table ip {TABLE}\ndelete table ip {TABLE}\n"
