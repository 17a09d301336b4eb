"""The DNS server's own Service: kube-system/kube-dns at the cluster DNS address, and its endpoints.

    desired = desired_objects(cluster_ip="10.43.0.10", address="198.51.100.1", port=53)
    await keep_kube_dns(client, desired, wake=event)    # forever, level-triggered

The Service is selectorless (this server is a process, not a pod): clusterIP `--cluster-dns-ip`,
ports `dns` 53/UDP and `dns-tcp` 53/TCP, labelled as kubectl cluster-info expects. Its endpoints
are written by this server, not by the EndpointSlice controller: an EndpointSlice
`kube-dns-<hash of address:port>` (managed-by `kubelite-dns`, so the controller leaves it alone;
one per replica) and the `kube-dns` Endpoints for older clients. The service dataplane routes
`10.43.0.10:53` to those addresses.

`reconcile` compares what is stored with what is desired and writes only a difference (create,
or update with the stored resourceVersion; a 409 is retried on the next pass). `keep_kube_dns`
runs it on start, whenever `wake` is set (the informers saw our objects change) and every
`resync` seconds. The system:kube-dns identity may create, get, update and patch these three
objects and nothing else (apiserver/auth/authz.py `_dns`). A clusterIP is immutable: a stored
Service with another one is reported, not replaced.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from api.client import Client
from api.errors import AlreadyExists, ApiError, Conflict, NotFound
from api.meta import ObjectMeta
from api.services import (
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    Endpoint,
    EndpointAddress,
    EndpointConditions,
    EndpointPort,
    Endpoints,
    EndpointSlice,
    EndpointSlicePort,
    EndpointSubset,
    Service,
    ServicePort,
    ServiceSpec,
)
from api.watch import Backoff

__all__ = ["DNS_SERVICE", "DNS_SLICE_MANAGER", "SYSTEM_NAMESPACE", "Desired", "desired_objects",
           "keep_kube_dns", "reconcile"]

log = logging.getLogger(__name__)

SYSTEM_NAMESPACE = "kube-system"
DNS_SERVICE = "kube-dns"
DNS_SLICE_MANAGER = "kubelite-dns"
T = TypeVar("T", EndpointSlice, Endpoints)
# kubectl cluster-info lists kube-system Services with cluster-service=true under their
# kubernetes.io/name: "CoreDNS is running at ...", as on kubeadm and k3s clusters.
SERVICE_LABELS = {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}


@dataclass(frozen=True)
class Desired:
    service: Service
    slice: EndpointSlice
    endpoints: Endpoints


def desired_objects(*, cluster_ip: str, address: str, port: int) -> Desired:
    """The three objects as this server wants them (pure)."""
    meta = ObjectMeta(name=DNS_SERVICE, namespace=SYSTEM_NAMESPACE, labels=dict(SERVICE_LABELS))
    service = Service(metadata=meta, spec=ServiceSpec(
        type="ClusterIP", cluster_ip=cluster_ip, cluster_ips=[cluster_ip],
        ports=[ServicePort(name="dns", protocol="UDP", port=53, target_port=port),
               ServicePort(name="dns-tcp", protocol="TCP", port=53, target_port=port)]))
    family = "IPv6" if ipaddress.ip_address(address).version == 6 else "IPv4"
    suffix = hashlib.sha256(f"{address}:{port}".encode()).hexdigest()[:5]
    slice_ = EndpointSlice(
        metadata=ObjectMeta(name=f"{DNS_SERVICE}-{suffix}", namespace=SYSTEM_NAMESPACE,
                            labels={SERVICE_NAME_LABEL: DNS_SERVICE, MANAGED_BY_LABEL: DNS_SLICE_MANAGER,
                                    **SERVICE_LABELS}),
        address_type=family,
        endpoints=[Endpoint(addresses=[address],
                            conditions=EndpointConditions(ready=True, serving=True, terminating=False))],
        ports=[EndpointSlicePort(name="dns", protocol="UDP", port=port),
               EndpointSlicePort(name="dns-tcp", protocol="TCP", port=port)])
    endpoints = Endpoints(
        metadata=ObjectMeta(name=DNS_SERVICE, namespace=SYSTEM_NAMESPACE, labels=dict(SERVICE_LABELS)),
        subsets=[EndpointSubset(addresses=[EndpointAddress(ip=address)],
                                ports=[EndpointPort(name="dns", protocol="UDP", port=port),
                                       EndpointPort(name="dns-tcp", protocol="TCP", port=port)])])
    return Desired(service, slice_, endpoints)


def _service_drift(stored: Service, want: Service) -> Service | None:
    """The stored Service changed to what we want (clusterIP kept), or None if it already is."""
    have = stored.spec
    labels = {**(stored.metadata.labels or {}), **SERVICE_LABELS}
    if have.cluster_ip not in (None, "", want.spec.cluster_ip):
        log.warning("kube-system/kube-dns has clusterIP %s, not %s (a clusterIP cannot change; delete the "
                    "Service to move it)", have.cluster_ip, want.spec.cluster_ip)
    same = (_ports(have.ports) == _ports(want.spec.ports) and not have.selector
            and (have.type or "ClusterIP") == "ClusterIP" and labels == (stored.metadata.labels or {}))
    if same:
        return None
    fixed = stored.copy_deep()
    fixed.metadata.labels = labels
    fixed.spec.ports = want.spec.ports
    fixed.spec.selector = None
    fixed.spec.type = "ClusterIP"
    return fixed


def _ports(ports: list[ServicePort] | None) -> list[tuple[object, ...]]:
    return [(p.name, p.protocol or "TCP", p.port, str(p.target_port or p.port)) for p in ports or []]


async def reconcile(client: Client, desired: Desired) -> None:
    """One pass: create what is missing, update what drifted (see module doc)."""
    want = desired.service
    try:
        stored = await client.get(Service, DNS_SERVICE, namespace=SYSTEM_NAMESPACE)
    except NotFound:
        try:
            await client.create(want, namespace=SYSTEM_NAMESPACE)
            log.info("created Service kube-system/kube-dns at %s", want.spec.cluster_ip)
        except AlreadyExists:
            pass
    else:
        fixed = _service_drift(stored, want)
        if fixed is not None:
            await client.update(fixed)
            log.info("repaired Service kube-system/kube-dns")
    await _keep(client, EndpointSlice, desired.slice, _slice_same)
    await _keep(client, Endpoints, desired.endpoints, _endpoints_same)


def _slice_same(a: EndpointSlice, b: EndpointSlice) -> bool:
    return (a.address_type == b.address_type and a.endpoints == b.endpoints and a.ports == b.ports
            and (a.metadata.labels or {}) == (b.metadata.labels or {}))


def _endpoints_same(a: Endpoints, b: Endpoints) -> bool:
    return a.subsets == b.subsets and (a.metadata.labels or {}) == (b.metadata.labels or {})


async def _keep(client: Client, model: type[T], want: T, same: Callable[[T, T], bool]) -> None:
    name = want.metadata.name or ""
    try:
        stored = await client.get(model, name, namespace=SYSTEM_NAMESPACE)
    except NotFound:
        try:
            await client.create(want, namespace=SYSTEM_NAMESPACE)
            log.info("created %s kube-system/%s", want.kind, name)
        except AlreadyExists:
            pass
        return
    if same(stored, want):
        return
    fixed = want.copy_deep()
    fixed.metadata = stored.metadata.copy_deep()
    fixed.metadata.labels = want.metadata.labels
    await client.update(fixed)
    log.info("repaired %s kube-system/%s", want.kind, name)


async def keep_kube_dns(client: Client, desired: Desired, *, wake: asyncio.Event, resync: float = 60.0) -> None:
    """Reconcile forever: on start, on `wake`, every `resync` seconds; errors retry with backoff."""
    backoff = Backoff(initial=0.2, cap=10.0)
    while True:
        wake.clear()
        try:
            await reconcile(client, desired)
        except Conflict:
            continue  # someone wrote in between: read again at once
        except (ApiError, ConnectionError, TimeoutError) as err:
            delay = backoff.next()
            log.warning("cannot keep kube-system/kube-dns (retrying in %.1fs): %s", delay, err)
            await asyncio.sleep(delay)
            continue
        backoff.reset()
        try:
            async with asyncio.timeout(resync):
                await wake.wait()
        except TimeoutError:
            pass
