"""Endpoints controller: the older one-object-per-Service Endpoints, mirrored for old clients.

    service events, pod events (services whose selector matches old or new labels),
    deletions of Endpoints ──► queue of service keys ──► sync(key)

sync(key) reads the Service, its pods and its Endpoints from the caches, computes the
Endpoints (endpoints_core) and writes only when they differ: create, or update with the
cached resourceVersion (409: retried from a fresher cache). After a write, the key waits
until the cache shows it (resourceVersions are etcd revisions: they only grow), so a burst
of pod events does not turn into a burst of doomed updates from a stale cache. Selectorless Services are left
alone: the API server keeps `kubernetes`'s, the DNS server `kube-dns`'s. When a Service is
gone (its delete event), its Endpoints are deleted, after a live GET confirms the Service is
really absent and with the Endpoints' uid as a precondition. Endpoints left over from a Service
deleted while the controller was down are found in the informer's first list (as Kubernetes
does at startup); Endpoints created later without a Service are someone's own and stay.
"""

from __future__ import annotations

import logging

from api.client import Client
from api.core import Pod
from api.errors import NotFound
from api.informer import object_key, split_key
from api.services import Endpoints, Service
from api.worker import run_workers
from api.workqueue import WorkQueue
from controllers import endpoints_core as core
from controllers import endpointslice_pods as pods_of
from controllers.shared import Informers

log = logging.getLogger(__name__)
STALE_RECHECK = 1.0


def _rv(ep: Endpoints) -> int:
    try:
        return int(ep.metadata.resource_version or 0)
    except ValueError:
        return 0


class EndpointsController:
    def __init__(self, client: Client, informers: Informers) -> None:
        self.client = client
        self.inf = informers
        self.queue = WorkQueue(name="endpoints")
        self._starting = True  # the informers' first lists are being delivered
        self._written: dict[str, int] = {}  # key -> resourceVersion of our last write, until the cache has it

    def register(self) -> None:
        self.inf.services.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n),
                                      on_delete=self._enqueue)
        self.inf.pods.add_handler(on_add=self._pod_changed, on_update=self._pod_updated,
                                  on_delete=self._pod_changed)
        # Added: maybe a leftover of a deleted Service. Deleted: maybe one to re-create.
        self.inf.endpoints.add_handler(on_add=self._endpoints_added, on_update=self._endpoints_updated,
                                       on_delete=self._endpoints_deleted)

    async def run(self, *, workers: int = 2) -> None:
        self._starting = False
        await run_workers(self.queue, self.sync, workers=workers, name="endpoints")

    # ------------------------------------------------------------ handlers: enqueue only

    def _enqueue(self, obj: Service | Endpoints) -> None:
        self.queue.add(object_key(obj))

    def _endpoints_added(self, ep: Endpoints) -> None:
        if self._starting and self.inf.services.get(object_key(ep)) is None:
            self.queue.add(object_key(ep))

    def _endpoints_deleted(self, ep: Endpoints) -> None:
        self._written.pop(object_key(ep), None)  # whatever we wrote is gone
        self.queue.add(object_key(ep))

    def _endpoints_updated(self, _old: Endpoints, new: Endpoints) -> None:
        if object_key(new) in self._written:
            self.queue.add(object_key(new))

    def _pods_services(self, pod: Pod, *label_sets: dict[str, str] | None) -> None:
        for svc in self.inf.services.list(namespace=pod.metadata.namespace or "default"):
            if any(pods_of.selects(svc, labels) for labels in label_sets):
                self.queue.add(object_key(svc))

    def _pod_changed(self, pod: Pod) -> None:
        self._pods_services(pod, pod.metadata.labels)

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        self._pods_services(new, old.metadata.labels, new.metadata.labels)

    # ------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        svc = self.inf.services.get(key)
        current = self.inf.endpoints.get(key)
        written = self._written.get(key)
        if written is not None:
            if current is None or _rv(current) < written:
                self.queue.add_after(key, STALE_RECHECK)  # normally its update event comes first
                return
            del self._written[key]
        if svc is None:
            if current is not None:
                await self._delete_orphan(key, current)
            return
        if not pods_of.managed(svc):
            return
        ns = svc.metadata.namespace or "default"
        want = core.desired(svc, self.inf.pods.list(namespace=ns), current)
        if want is None:
            return
        stored = await (self.client.create(want) if current is None else self.client.update(want))
        self._written[key] = _rv(stored)

    async def _delete_orphan(self, key: str, ep: Endpoints) -> None:
        namespace, name = split_key(key)
        try:
            await self.client.get(Service, name, namespace=namespace)
            return  # the cache is behind; its add event will sync the key again
        except NotFound:
            pass
        log.info("endpoints %s: its Service is gone, deleting", key)
        try:
            await self.client.delete(Endpoints, name, namespace=namespace, uid=ep.metadata.uid)
        except NotFound:
            pass
