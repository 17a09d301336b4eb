"""Namespace controller: empty a namespace that is being deleted, then finalize it.

    namespace events --> queue of names --> sync(name): if deletionTimestamp is set,
        delete every object of every namespaced resource in it (live lists, since events
        and leases are not cached); once all lists come back empty, PUT
        /api/v1/namespaces/{name}/finalize without the `kubernetes` finalizer, which makes
        the API server delete the namespace.

Pods on a node take their grace period to go (the kubelet confirms); the namespace waits for
them, re-checking every second.
"""

from __future__ import annotations

import logging

from api import resources
from api.client import Client
from api.core import Namespace
from api.errors import Conflict, NotFound
from api.informer import object_key
from api.worker import run_workers
from api.workqueue import WorkQueue
from controllers.shared import Informers

log = logging.getLogger(__name__)
FINALIZER = "kubernetes"
RECHECK = 1.0


class NamespaceController:
    def __init__(self, client: Client, informers: Informers) -> None:
        self.client = client
        self.inf = informers
        self.queue = WorkQueue(name="namespace")

    def register(self) -> None:
        self.inf.namespaces.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n))

    async def run(self, *, workers: int = 2) -> None:
        await run_workers(self.queue, self.sync, workers=workers, name="namespace")

    def _enqueue(self, ns: Namespace) -> None:
        if ns.metadata.deletion_timestamp is not None:
            self.queue.add(object_key(ns))

    async def sync(self, name: str) -> None:
        ns = self.inf.namespaces.get(name)
        if ns is None or ns.metadata.deletion_timestamp is None:
            return
        remaining = 0
        # Owners first, so the garbage collector is not racing us for their dependents.
        order = sorted((r for r in resources.ALL if r.namespaced),
                       key=lambda r: {"Deployment": 0, "ReplicaSet": 1, "Pod": 2}.get(r.kind, 3))
        for res in order:
            items = (await self.client.list_all(res.model, namespace=name)).items
            for obj in items:
                meta = getattr(obj, "metadata")  # noqa: B009 - every served model has metadata
                remaining += 1
                if meta.deletion_timestamp is not None:
                    continue
                try:
                    await self.client.delete(res.model, meta.name or "", namespace=name,
                                             propagation_policy="Background")
                except NotFound:
                    remaining -= 1
        if remaining:
            log.info("namespace %s: waiting for %d objects to go", name, remaining)
            self.queue.add_after(name, RECHECK)
            return
        finalizers = [f for f in (ns.spec.finalizers if ns.spec else None) or [] if f != FINALIZER]
        body = ns.copy_deep().to_dict()
        body.setdefault("spec", {})["finalizers"] = finalizers
        try:
            await self.client.request("PUT", resources.NAMESPACES.path(None, name, "finalize"), json=body)
        except NotFound:
            return
        except Conflict:
            self.queue.add_after(name, 0.1)
