"""Informer caches -> the zone, level-triggered.

    feed = ZoneFeed(zone, services, slices, pods, namespaces, domain="cluster.local")
    await feed.run()     # forever: apply dirty keys as soon as handlers mark them

Handlers only mark keys dirty (a Service's `ns/name`, a pod's `ns/name`, a namespace) and wake
the loop; `sync_*` recompute a key's records from the caches as they are now and hand them to
`Zone.set_source`, which changes only that source's names. A slice event marks the Service its
`kubernetes.io/service-name` label names; a Service's records are rebuilt from the Service and
all of its slices (`slices.by_index("service", key)`), so the order of events does not matter.
The loop runs on the event loop between events: an API change is in DNS a few milliseconds
after the watch delivers it.
"""

from __future__ import annotations

import asyncio

from api.core import Namespace, Pod
from api.informer import Informer, object_key
from api.services import SERVICE_NAME_LABEL, EndpointSlice, Service
from dns.records import pod_records, service_records
from dns.zone import Zone

__all__ = ["SERVICE_INDEX", "ZoneFeed", "slice_service_key"]

SERVICE_INDEX = "service"


def slice_service_key(eps: EndpointSlice) -> list[str]:
    """The indexer for slices: `ns/service` from the service-name label."""
    service = (eps.metadata.labels or {}).get(SERVICE_NAME_LABEL)
    return [f"{eps.metadata.namespace}/{service}"] if service and eps.metadata.namespace else []


class ZoneFeed:
    """See the module doc. The slices informer needs the `SERVICE_INDEX` indexer."""

    def __init__(self, zone: Zone, services: Informer[Service], slices: Informer[EndpointSlice],
                 pods: Informer[Pod], namespaces: Informer[Namespace], *, domain: str) -> None:
        self.zone = zone
        self.domain = domain
        self._services = services
        self._slices = slices
        self._pods = pods
        self._namespaces = namespaces
        self._dirty: dict[tuple[str, str], None] = {}
        self._wake = asyncio.Event()
        services.add_handler(on_add=self._service, on_update=lambda _o, n: self._service(n),
                             on_delete=self._service)
        slices.add_handler(on_add=self._slice, on_update=self._slice_update, on_delete=self._slice)
        pods.add_handler(on_add=self._pod, on_update=lambda _o, n: self._pod(n), on_delete=self._pod)
        namespaces.add_handler(on_add=self._namespace, on_update=lambda _o, n: self._namespace(n),
                               on_delete=self._namespace)

    # ------------------------------------------------------------ handlers: mark and wake

    def _mark(self, kind: str, key: str) -> None:
        self._dirty[(kind, key)] = None
        self._wake.set()

    def _service(self, svc: Service) -> None:
        self._mark("svc", object_key(svc))

    def _slice(self, eps: EndpointSlice) -> None:
        for key in slice_service_key(eps):
            self._mark("svc", key)

    def _slice_update(self, old: EndpointSlice, new: EndpointSlice) -> None:
        self._slice(old)  # a relabelled slice leaves its old Service
        self._slice(new)

    def _pod(self, pod: Pod) -> None:
        self._mark("pod", object_key(pod))

    def _namespace(self, ns: Namespace) -> None:
        self._mark("ns", object_key(ns))

    # ------------------------------------------------------------ sync

    def sync_pending(self) -> int:
        """Apply every dirty key; the number of keys applied."""
        pending, self._dirty = self._dirty, {}
        self._wake.clear()
        for kind, key in pending:
            if kind == "svc":
                self.sync_service(key)
            elif kind == "pod":
                self.sync_pod(key)
            else:
                self.sync_namespace(key)
        return len(pending)

    def sync_service(self, key: str) -> None:
        svc = self._services.get(key)
        records = [] if svc is None else service_records(svc, self._slices.by_index(SERVICE_INDEX, key),
                                                         self.domain)
        self.zone.set_source(("svc", key), records)

    def sync_pod(self, key: str) -> None:
        pod = self._pods.get(key)
        self.zone.set_source(("pod", key), [] if pod is None else pod_records(pod, self.domain))

    def sync_namespace(self, key: str) -> None:
        self.zone.set_namespace(key, self._namespaces.get(key) is not None)

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self.sync_pending()
