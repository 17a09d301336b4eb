"""EndpointSlice controller: keep each selector Service's EndpointSlices listing its pods.

    service events ─────────────┐
    pod events ── services whose selector matches the old or new labels ──► queue of service keys
    our slices' events ── their service-name label ┘          │
                                                              ▼
    sync(key): read Service, pods, slices from the caches; wait if the cache misses our own
               writes (endpointslice_tracker); plan (endpointslice_core.reconcile);
               create, then update (resourceVersion precondition), then delete (uid +
               resourceVersion preconditions); any error raises and the key is retried
               with backoff, from fresher caches (errors other than a conflict or a vanished
               slice, which only mean the cache was behind, are also a Warning event on the Service:
               FailedToUpdateEndpointSlices, as Kubernetes records it)

Creates and updates come before deletes so that an endpoint moving between slices is never
missing from all of them. Selectorless Services (`kubernetes`, `kube-dns`, anything a user
fills by hand) are not managed: their slices are left to whoever writes them. A deleted
Service's slices go with it through their ownerReferences (the garbage collector).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from api.client import Client
from api.core import Pod
from api.errors import ApiError, Conflict, NotFound
from api.events import EventRecorder
from api.informer import object_key
from api.services import EndpointSlice, Service
from api.worker import run_workers
from api.workqueue import WorkQueue
from controllers import endpointslice_core as core
from controllers import endpointslice_pods as pods_of
from controllers.endpointslice_tracker import SliceTracker
from controllers.shared import Informers

log = logging.getLogger(__name__)
STALE_RECHECK = 1.0  # the slice's own event normally wakes the key first


class EndpointSliceController:
    def __init__(self, client: Client, informers: Informers, recorder: EventRecorder, *,
                 max_endpoints: int = core.MAX_ENDPOINTS, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.inf = informers
        self.recorder = recorder
        self.max_endpoints = max_endpoints
        self.queue = WorkQueue(name="endpointslice")
        self.tracker = SliceTracker(clock=clock)

    def register(self) -> None:
        self.inf.services.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n),
                                      on_delete=self._enqueue)
        self.inf.pods.add_handler(on_add=self._pod_changed, on_update=self._pod_updated,
                                  on_delete=self._pod_changed)
        self.inf.endpointslices.add_handler(on_add=self._slice_changed,
                                            on_update=lambda _o, n: self._slice_changed(n),
                                            on_delete=self._slice_deleted)

    async def run(self, *, workers: int = 2) -> None:
        await run_workers(self.queue, self.sync, workers=workers, name="endpointslice")

    # ------------------------------------------------------------ handlers: enqueue only

    def _enqueue(self, svc: Service) -> None:
        self.queue.add(object_key(svc))

    def _services_selecting(self, pod: Pod, *label_sets: dict[str, str] | None) -> set[str]:
        keys = set()
        for svc in self.inf.services.list(namespace=pod.metadata.namespace or "default"):
            if any(pods_of.selects(svc, labels) for labels in label_sets):
                keys.add(object_key(svc))
        return keys

    def _pod_changed(self, pod: Pod) -> None:
        for key in self._services_selecting(pod, pod.metadata.labels):
            self.queue.add(key)

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        for key in self._services_selecting(new, old.metadata.labels, new.metadata.labels):
            self.queue.add(key)

    @staticmethod
    def _service_key(slice_: EndpointSlice) -> str | None:
        if not core.is_managed(slice_):
            return None
        return f"{slice_.metadata.namespace}/{(slice_.metadata.labels or {})[core.SERVICE_NAME_LABEL]}"

    def _slice_changed(self, slice_: EndpointSlice) -> None:
        key = self._service_key(slice_)
        if key is not None:
            self.queue.add(key)

    def _slice_deleted(self, slice_: EndpointSlice) -> None:
        key = self._service_key(slice_)
        if key is not None:
            self.tracker.observed_deletion(key, slice_)
            self.queue.add(key)

    # ------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        svc = self.inf.services.get(key)
        if svc is None:
            self.tracker.forget(key)  # its slices go with it (ownerReferences, garbage collector)
            return
        slices = self.inf.endpointslices.by_index("service", key)
        if self.tracker.stale(key, slices):
            self.queue.add_after(key, STALE_RECHECK)
            return
        ns = svc.metadata.namespace or "default"
        plan = core.reconcile(svc, self.inf.pods.list(namespace=ns), slices, max_endpoints=self.max_endpoints)
        if plan.empty():
            return
        log.debug("endpointslice %s: %d to create, %d to update, %d to delete", key, len(plan.create),
                 len(plan.update), len(plan.delete))
        try:
            await self._apply(key, ns, plan)
        except ApiError as e:
            if not isinstance(e, Conflict | NotFound):  # those only mean the cache was behind
                self.recorder.event(svc, "Warning", "FailedToUpdateEndpointSlices",
                                    f"Error updating Endpoint Slices for Service {key}: {e}")
            raise

    async def _apply(self, key: str, ns: str, plan: core.Plan) -> None:
        for new in plan.create:
            self.tracker.wrote(key, await self.client.create(new))
        for changed in plan.update:
            self.tracker.wrote(key, await self.client.update(changed))
        for old in plan.delete:
            meta = old.metadata
            try:
                await self.client.delete(EndpointSlice, meta.name or "", namespace=ns, uid=meta.uid,
                                         resource_version=meta.resource_version)
            except NotFound:
                pass
            self.tracker.deleted(key, old)
