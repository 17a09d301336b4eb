"""Kubernetes objects -> DNS records for the cluster zone (pure: no I/O, no clock).

    service_records(svc, slices, domain="cluster.local")  -> records of one Service
    pod_records(pod, domain="cluster.local")              -> the pod's PTR (its A is synthesised)

The names follow the Kubernetes DNS specification (kubernetes/dns docs/specification.md),
for a zone `<domain>` (cluster.local):

* ClusterIP Service: `<svc>.<ns>.svc.<domain>` A/AAAA -> each ClusterIP; for every named port
  `_<port>._<proto>.<svc>.<ns>.svc.<domain>` SRV 0 100 <port> `<svc>.<ns>.svc.<domain>`; a PTR
  for each ClusterIP back to the Service name.
* Headless Service (`clusterIP: None`): `<svc>.<ns>.svc.<domain>` A/AAAA -> every ready endpoint
  of its EndpointSlices (unready ones too with `publishNotReadyAddresses`); each such endpoint is
  also `<host>.<svc>.<ns>.svc.<domain>`, where `<host>` is the endpoint's hostname or, without
  one, its address with dashes (10-244-1-5); one SRV per endpoint and named port pointing at
  that name; a PTR for each endpoint address back to it.
* ExternalName Service: `<svc>.<ns>.svc.<domain>` CNAME -> `spec.externalName`.
* Every Service's name exists (an `EXISTS` marker): a headless Service without ready endpoints,
  or one whose ClusterIP is not allocated yet, is NODATA, not NXDOMAIN.
* Pods: `<a-b-c-d>.<ns>.pod.<domain>` is answered for any address in an existing namespace
  (CoreDNS `pods insecure`, see `dns.zone`); a pod's own addresses get a PTR to that name,
  ranked below a Service's PTR for the same address (`Record.rank`).

Invariants: every name is lower case, absolute (trailing dot); records are immutable values,
equal when their content is; addresses are normalised (`ipaddress`), so one address is one
record however it was spelled; nothing here reads a clock or the network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from api.core import Pod
from api.services import EndpointSlice, Service

__all__ = [
    "AAAA",
    "CNAME",
    "EXISTS",
    "NS",
    "PTR",
    "SOA",
    "SRV",
    "TXT",
    "A",
    "Record",
    "dashed",
    "pod_name_address",
    "pod_records",
    "reverse_name",
    "service_name",
    "service_records",
    "zone_name",
]

# Query types (RFC 1035 and successors); the numbers are the wire values.
A, NS, CNAME, SOA, PTR, TXT, AAAA, SRV = 1, 2, 5, 6, 12, 16, 28, 33
EXISTS = 0  # not a wire type: a name that exists without records of its own (NODATA, not NXDOMAIN)

PROTOCOLS = {"TCP": "_tcp", "UDP": "_udp", "SCTP": "_sctp"}


@dataclass(frozen=True, slots=True)
class Record:
    """One resource record (with `rtype` EXISTS: only the fact that `name` exists). `data` by
    type: A/AAAA an address string; CNAME/PTR/NS a name; SRV (priority, weight, port, target);
    TXT the text. `rank` orders alternatives for the same name and type: only the lowest rank
    present is answered (a Service's PTR hides a pod's PTR for the same address)."""

    name: str
    rtype: int
    data: str | tuple[int, int, int, str]
    rank: int = 0


def zone_name(domain: str) -> str:
    """`cluster.local` -> `cluster.local.`"""
    return domain.strip(".").lower() + "."


def service_name(name: str, namespace: str, domain: str) -> str:
    return f"{name}.{namespace}.svc.{zone_name(domain)}".lower()


def dashed(address: str) -> str:
    """`10.244.1.5` -> `10-244-1-5`; `fd00::1` -> `fd00--1` (the Kubernetes spelling)."""
    return address.replace(".", "-").replace(":", "-")


def reverse_name(address: str) -> str:
    """The in-addr.arpa / ip6.arpa name of an address."""
    return ipaddress.ip_address(address).reverse_pointer + "."


def pod_name_address(label: str) -> str | None:
    """The address a pod name's first label spells (`10-244-1-5`), or None if it spells none."""
    if label.count("-") == 3:
        candidate = label.replace("-", ".")
    else:
        candidate = label.replace("-", ":")
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def _address(text: str | None) -> tuple[int, str] | None:
    """(A or AAAA, normalised address), or None for anything that is not an address."""
    if not text:
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return (A if ip.version == 4 else AAAA), str(ip)


def _cluster_ips(svc: Service) -> list[str]:
    spec = svc.spec
    ips = list(spec.cluster_ips or [])
    if spec.cluster_ip and spec.cluster_ip not in ips:
        ips.insert(0, spec.cluster_ip)
    return ips


def is_headless(svc: Service) -> bool:
    return any(ip == "None" for ip in _cluster_ips(svc))


def _port_label(name: str, protocol: str | None) -> str | None:
    proto = PROTOCOLS.get((protocol or "TCP").upper())
    return f"_{name.lower()}.{proto}" if name and proto else None


def service_records(svc: Service, slices: Iterable[EndpointSlice], domain: str) -> list[Record]:
    """Every record a Service owns (see the module doc); `slices` are its EndpointSlices."""
    meta = svc.metadata
    if not meta.name or not meta.namespace:
        return []
    own = service_name(meta.name, meta.namespace, domain)
    spec = svc.spec
    exists = Record(own, EXISTS, "")
    if (spec.type or "ClusterIP") == "ExternalName":
        target = (spec.external_name or "").strip(".").lower()
        return [Record(own, CNAME, target + ".")] if target else [exists]
    if is_headless(svc):
        return [exists, *_headless_records(own, svc, slices)]
    records: list[Record] = [exists]
    for ip in _cluster_ips(svc):
        parsed = _address(ip)
        if parsed is not None:
            records.append(Record(own, parsed[0], parsed[1]))
            records.append(Record(reverse_name(parsed[1]), PTR, own))
    if len(records) > 1:
        for port in spec.ports or []:
            label = _port_label(port.name or "", port.protocol)
            if label is not None:
                records.append(Record(f"{label}.{own}", SRV, (0, 100, port.port, own)))
    return records


def _headless_records(own: str, svc: Service, slices: Iterable[EndpointSlice]) -> list[Record]:
    publish_unready = bool(svc.spec.publish_not_ready_addresses)
    # host name -> addresses; kept in slice order so answers are stable
    hosts: dict[str, dict[str, int]] = {}
    ports: dict[str, int] = {}  # SRV label -> port
    for eps in slices:
        if eps.address_type not in ("IPv4", "IPv6"):
            continue
        for port in eps.ports or []:
            label = _port_label(port.name or "", port.protocol)
            if label is not None and port.port is not None:
                ports.setdefault(label, port.port)
        for endpoint in eps.endpoints:
            conditions = endpoint.conditions
            # ready unset means ready (the EndpointSlice API says so)
            ready = conditions is None or conditions.ready is None or conditions.ready
            if not (ready or publish_unready):
                continue
            for text in endpoint.addresses:
                parsed = _address(text)
                if parsed is None:
                    continue
                host = (endpoint.hostname or dashed(parsed[1])).lower()
                hosts.setdefault(host, {})[parsed[1]] = parsed[0]
    records: list[Record] = []
    seen: set[str] = set()
    for host, addresses in hosts.items():
        name = f"{host}.{own}"
        for address, rtype in addresses.items():
            records.append(Record(name, rtype, address))
            records.append(Record(reverse_name(address), PTR, name))
            if address not in seen:
                seen.add(address)
                records.append(Record(own, rtype, address))
    if hosts:
        weight = max(1, 100 // len(hosts))
        for label, number in ports.items():
            for host in hosts:
                records.append(Record(f"{label}.{own}", SRV, (0, weight, number, f"{host}.{own}")))
    return records


POD_RANK = 1  # a pod's PTR yields to a Service's for the same address


def pod_records(pod: Pod, domain: str) -> list[Record]:
    """A pod's PTR records (`<a-b-c-d>.<ns>.pod.<domain>`). Host-network pods get none: their
    address is the node's."""
    meta = pod.metadata
    status = pod.status
    if not meta.namespace or status is None or (pod.spec is not None and pod.spec.host_network):
        return []
    addresses = [status.pod_ip] + [p.ip for p in status.pod_ips or []]
    records: list[Record] = []
    for text in dict.fromkeys(a for a in addresses if a):
        parsed = _address(text)
        if parsed is not None:
            name = f"{dashed(parsed[1])}.{meta.namespace}.pod.{zone_name(domain)}".lower()
            records.append(Record(reverse_name(parsed[1]), PTR, name, rank=POD_RANK))
    return records
