"""`run_dns`: the cluster DNS as one structured lifetime.

    await run_dns(client, DnsOptions(bind="127.0.0.1", port=53, upstreams=[...]), stop=stop)

Order: informers (Services, EndpointSlices, Pods, Namespaces) list and watch; once all four have
synced the zone is filled, and only then does the server bind, so it never answers NXDOMAIN for
a name that exists but has not been listed yet. The kube-dns keeper starts with the server (its
endpoints point at an address that answers). Everything lives in one TaskGroup: if a part dies
the whole exits with the reason; `stop` ends it gracefully.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from api.client import Client
from api.core import Namespace, Pod
from api.informer import Informer
from api.services import EndpointSlice, Service
from dns.feed import SERVICE_INDEX, ZoneFeed, slice_service_key
from dns.forward import Address, Forwarder, upstreams_from_resolv_conf
from dns.kube_dns import DNS_SERVICE, SYSTEM_NAMESPACE, desired_objects, keep_kube_dns
from dns.server import DnsServer
from dns.zone import Zone

__all__ = ["DnsOptions", "run_dns"]

log = logging.getLogger(__name__)

DEFAULT_CLUSTER_DNS_IP = "10.43.0.10"


@dataclass
class DnsOptions:
    bind: str = "127.0.0.1"
    port: int = 53
    upstreams: list[Address] | None = None  # None: /etc/resolv.conf's
    domain: str = "cluster.local"
    cluster_dns_ip: str = DEFAULT_CLUSTER_DNS_IP
    advertise: str | None = None  # the endpoint address; default the bind address
    keep_service: bool = True
    started: asyncio.Event = field(default_factory=asyncio.Event)  # set once answering
    bound_port: int | None = None  # the port answering (differs from `port` for port 0)


def _upstreams(options: DnsOptions) -> list[Address]:
    if options.upstreams is not None:
        return options.upstreams

    def ours(address: Address) -> bool:
        host, port = address
        if port != options.port:
            return False
        return host == options.bind or (options.bind in ("0.0.0.0", "::") and host.startswith(("127.", "::1")))

    return upstreams_from_resolv_conf(exclude=ours)


async def run_dns(client: Client, options: DnsOptions, *, stop: asyncio.Event) -> None:
    """Serve until `stop` (see module doc)."""
    services: Informer[Service] = Informer(client, Service)
    slices: Informer[EndpointSlice] = Informer(client, EndpointSlice, indexers={SERVICE_INDEX: slice_service_key})
    pods: Informer[Pod] = Informer(client, Pod)
    namespaces: Informer[Namespace] = Informer(client, Namespace)
    zone = Zone(options.domain, ns_address=options.cluster_dns_ip)
    feed = ZoneFeed(zone, services, slices, pods, namespaces, domain=options.domain)
    upstreams = _upstreams(options)
    if not upstreams:
        log.warning("no upstream resolvers (none usable in /etc/resolv.conf, no --upstream): names outside "
                    "%s get SERVFAIL", zone.origin)
    server = DnsServer(zone, Forwarder(upstreams), bind=options.bind, port=options.port)
    wake = asyncio.Event()

    def ours(obj: Service | EndpointSlice) -> None:
        meta = obj.metadata
        if meta.namespace == SYSTEM_NAMESPACE and (meta.name or "").startswith(DNS_SERVICE):
            wake.set()

    for informer in (services, slices):
        informer.add_handler(on_add=ours, on_update=lambda _o, n: ours(n), on_delete=ours)

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(i.run(), name=f"dns-{i.name}") for i in (services, slices, pods, namespaces)]
        await asyncio.gather(services.wait_synced(), slices.wait_synced(), pods.wait_synced(),
                             namespaces.wait_synced())
        feed.sync_pending()
        await server.start()
        try:
            tasks.append(group.create_task(feed.run(), name="dns-feed"))
            if options.keep_service:
                advertise = options.advertise or options.bind
                desired = desired_objects(cluster_ip=options.cluster_dns_ip, address=advertise, port=server.port)
                tasks.append(group.create_task(keep_kube_dns(client, desired, wake=wake), name="dns-kube-dns"))
            options.bound_port = server.port
            options.started.set()
            await stop.wait()
        finally:
            await server.close()
            for task in tasks:
                task.cancel()
