"""Garbage collector: delete objects whose owners are gone, and carry out foreground and
orphan deletion of owners (decisions in gc_core).

    any pod/rs/deployment/service/endpointslice event --> queue of "Kind/namespace/name" --> sync:
        as an owner being deleted: delete or orphan its dependents, then drop the finalizer
        as a dependent: check each owner by uid; delete it if all are gone, else drop the
        dangling references

How deletion propagates with the API server (which handles DeleteOptions.propagationPolicy):
Background: the server deletes the owner at once; the owner's DELETED event enqueues its
dependents, which find their owner absent and are deleted. Foreground: the server marks the
owner (deletionTimestamp + finalizer `foregroundDeletion`); this controller deletes the
dependents (foreground too, so grandchildren go first) and removes the finalizer once none is
left, which makes the server delete the owner. Orphan: finalizer `orphan`; this controller strips
the owner's reference from each dependent and removes the finalizer.

An owner missing from the cache is confirmed with a live GET before a dependent is deleted:
a new owner may simply not have reached the cache yet.
"""

from __future__ import annotations

import logging
from typing import Any

from api import resources
from api.apps import Deployment, ReplicaSet
from api.base import KubeModel
from api.client import Client, object_meta
from api.core import Pod
from api.errors import NotFound
from api.informer import Informer, object_key
from api.services import EndpointSlice, Service
from api.worker import run_workers
from api.workqueue import WorkQueue
from controllers import gc_core as core
from controllers.shared import Informers, owner_refs_patch

log = logging.getLogger(__name__)


class GarbageCollector:
    def __init__(self, client: Client, informers: Informers) -> None:
        self.client = client
        self.by_kind: dict[str, Informer[Any]] = {
            "Pod": informers.pods, "ReplicaSet": informers.replicasets, "Deployment": informers.deployments,
            "Service": informers.services, "EndpointSlice": informers.endpointslices,
        }
        self.models: dict[str, type[KubeModel]] = {"Pod": Pod, "ReplicaSet": ReplicaSet, "Deployment": Deployment,
                                                   "Service": Service, "EndpointSlice": EndpointSlice}
        self.queue = WorkQueue(name="garbage-collector")

    def register(self) -> None:
        for kind, inf in self.by_kind.items():
            self._register(kind, inf)

    def _register(self, kind: str, inf: Informer[Any]) -> None:
        def on_add(obj: KubeModel) -> None:
            self._changed(kind, obj)

        def on_update(_old: KubeModel, new: KubeModel) -> None:
            self._changed(kind, new)

        def on_delete(obj: KubeModel) -> None:
            self._deleted(kind, obj)

        inf.add_handler(on_add=on_add, on_update=on_update, on_delete=on_delete)

    async def run(self, *, workers: int = 2) -> None:
        await run_workers(self.queue, self.sync, workers=workers, name="garbage-collector")

    # ------------------------------------------------------------ handlers

    def _changed(self, kind: str, obj: KubeModel) -> None:
        meta = object_meta(obj)
        if meta.owner_references or (meta.deletion_timestamp is not None and meta.finalizers):
            self.queue.add(f"{kind}/{object_key(obj)}")

    def _deleted(self, kind: str, obj: KubeModel) -> None:
        meta = object_meta(obj)
        for dep_kind, dep in self._dependents(meta.uid or ""):
            self.queue.add(f"{dep_kind}/{object_key(dep)}")
        # A foreground-deleting owner waits for this one: let it look again.
        for ref in meta.owner_references or []:
            if ref.kind in self.by_kind:
                key = f"{meta.namespace}/{ref.name}" if meta.namespace else ref.name
                self.queue.add(f"{ref.kind}/{key}")

    def _dependents(self, uid: str) -> list[tuple[str, KubeModel]]:
        return [(kind, obj) for kind, inf in self.by_kind.items() for obj in inf.by_index("owner", uid)]

    # ------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        kind, _, obj_key = key.partition("/")
        inf = self.by_kind.get(kind)
        obj = inf.get(obj_key) if inf is not None else None
        if obj is None:
            return
        meta = object_meta(obj)
        if meta.deletion_timestamp is not None:
            await self._as_owner(kind, obj)
        else:
            await self._as_dependent(kind, obj)

    async def _as_owner(self, kind: str, obj: KubeModel) -> None:
        meta = object_meta(obj)
        deps = self._dependents(meta.uid or "")
        action = core.decide_owner(meta, dependents=len(deps))
        for dep_kind, dep in deps:
            dmeta = object_meta(dep)
            try:
                if action.orphan:
                    await self.client.patch(self.models[dep_kind], dmeta.name or "",
                                            owner_refs_patch(dep, remove_uids={meta.uid or ""}),
                                            namespace=dmeta.namespace)
                elif action.delete_dependents and dmeta.deletion_timestamp is None:
                    await self.client.delete(self.models[dep_kind], dmeta.name or "", namespace=dmeta.namespace,
                                             uid=dmeta.uid, propagation_policy="Foreground")
            except NotFound:
                pass
        if action.drop_finalizer is not None:
            fresh = obj.copy_deep()
            fmeta = object_meta(fresh)
            fmeta.finalizers = [f for f in fmeta.finalizers or [] if f != action.drop_finalizer] or None
            try:
                await self.client.update(fresh)  # the last finalizer gone: the server deletes it
            except NotFound:
                pass
        elif deps and (action.orphan or action.delete_dependents):
            # Dependent events wake us too; this is the safety net for a missed one.
            self.queue.add_after(f"{kind}/{object_key(obj)}", 2.0)

    async def _as_dependent(self, kind: str, obj: KubeModel) -> None:
        meta = object_meta(obj)
        states: dict[str, core.Owner] = {}
        for ref in meta.owner_references or []:
            states[ref.uid] = await self._owner_state(ref.kind, ref.name, ref.uid, meta.namespace)
        action = core.decide_dependent(meta, states)
        try:
            if action.delete:
                log.info("garbage collector: deleting %s %s/%s: its owners are gone", kind, meta.namespace,
                         meta.name)
                await self.client.delete(self.models[kind], meta.name or "", namespace=meta.namespace, uid=meta.uid,
                                         propagation_policy="Background")
            elif action.remove_refs:
                await self.client.patch(self.models[kind], meta.name or "",
                                        owner_refs_patch(obj, remove_uids=set(action.remove_refs)),
                                        namespace=meta.namespace)
        except NotFound:
            pass

    async def _owner_state(self, kind: str, name: str, uid: str, namespace: str | None) -> core.Owner:
        inf = self.by_kind.get(kind)
        if inf is not None:
            for owner in inf.by_index("uid", uid):
                return core.Owner.DELETING if object_meta(owner).deletion_timestamp else core.Owner.PRESENT
        try:
            res = resources.BY_KIND[kind]
        except KeyError:
            return core.Owner.PRESENT  # a kind we do not serve: never delete on a guess
        try:
            live = await self.client.get(res.model, name, namespace=namespace if res.namespaced else None)
        except NotFound:
            return core.Owner.ABSENT
        lmeta = object_meta(live)
        if lmeta.uid != uid:
            return core.Owner.ABSENT
        return core.Owner.DELETING if lmeta.deletion_timestamp else core.Owner.PRESENT
