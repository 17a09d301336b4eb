"""Deployment controller: roll a Deployment's ReplicaSets toward its template, one step per sync.

    deployment/rs events --> queue of deployment keys --> sync(key): claim ReplicaSets,
        plan one step (deployment_core.plan), apply it: create the new ReplicaSet, scale,
        annotate, delete old history, write the revision annotation and status

Every write is conditional on the resourceVersion the step was planned from (PUT with
metadata.resourceVersion), so a step planned on a stale cache fails with 409 and the key
is synced again from fresher state; steps are idempotent, so a controller-manager that
restarts mid-rollout simply takes the next step. A ReplicaSet's name is derived from the
template hash, so a create that raced with an earlier one finds it (AlreadyExists) rather
than making a duplicate.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from api.apps import Deployment, ReplicaSet
from api.client import Client
from api.errors import AlreadyExists, NotFound
from api.events import EventRecorder
from api.informer import object_key
from api.selectors import label_selector_from_dict
from api.worker import run_workers
from api.workqueue import WorkQueue
from controllers import deployment_core as core
from controllers.replicaset_core import claim
from controllers.shared import Informers, controller_key, controller_ref, owner_refs_patch, write_status

log = logging.getLogger(__name__)
KIND = "Deployment"


class DeploymentController:
    def __init__(self, client: Client, informers: Informers, recorder: EventRecorder) -> None:
        self.client = client
        self.inf = informers
        self.recorder = recorder
        self.queue = WorkQueue(name="deployment")

    def register(self) -> None:
        self.inf.deployments.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n),
                                         on_delete=self._enqueue)
        self.inf.replicasets.add_handler(on_add=self._rs_changed, on_update=lambda o, n: self._rs_changed(n, o),
                                         on_delete=self._rs_changed)

    async def run(self, *, workers: int = 2) -> None:
        await run_workers(self.queue, self.sync, workers=workers, name="deployment")

    def _enqueue(self, d: Deployment) -> None:
        self.queue.add(object_key(d))

    def _rs_changed(self, rs: ReplicaSet, old: ReplicaSet | None = None) -> None:
        for obj in (rs, old):
            if obj is None:
                continue
            key = controller_key(obj, KIND)
            if key is not None:
                self.queue.add(key)
            elif obj.metadata.controller_ref() is None:
                for d in self.inf.deployments.list(namespace=obj.metadata.namespace or "default"):
                    if label_selector_from_dict(d.spec.selector.to_dict()).matches(obj.metadata.labels):
                        self.queue.add(object_key(d))

    async def sync(self, key: str) -> None:
        d = self.inf.deployments.get(key)
        if d is None or d.metadata.deletion_timestamp is not None:
            return  # the garbage collector takes care of its ReplicaSets
        ns = d.metadata.namespace or "default"
        selector = label_selector_from_dict(d.spec.selector.to_dict())
        owned, adopt, release = claim(self.inf.replicasets.list(namespace=ns), owner_uid=d.metadata.uid or "",
                                      selector=selector)
        for rs in adopt:
            owned.append(await self.client.patch(ReplicaSet, rs.metadata.name or "",
                                                 owner_refs_patch(rs, add=controller_ref(d)), namespace=ns))
        for rs in release:
            try:
                await self.client.patch(ReplicaSet, rs.metadata.name or "",
                                        owner_refs_patch(rs, remove_uids={d.metadata.uid or ""}), namespace=ns)
            except NotFound:
                pass
        owned = [rs for rs in owned if rs.metadata.deletion_timestamp is None]
        plan = core.plan(d, owned, now=datetime.now(UTC).replace(microsecond=0))
        await self._apply(d, owned, plan)
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after)

    async def _apply(self, d: Deployment, owned: list[ReplicaSet], plan: core.Plan) -> None:
        by_name = {rs.metadata.name: rs for rs in owned}
        if plan.create is not None:
            try:
                await self.client.create(plan.create)
            except AlreadyExists:
                existing = await self.client.get(ReplicaSet, plan.create.metadata.name or "",
                                                 namespace=plan.create.metadata.namespace)
                ref = existing.metadata.controller_ref()
                same = existing.spec.template is not None and (
                    core.template_key(existing.spec.template) == core.template_key(d.spec.template))
                if ref is None or ref.uid != d.metadata.uid or not same:
                    # A hash collision with someone else's ReplicaSet: the next name differs.
                    bumped = d.copy_deep()
                    status = bumped.status or core.DeploymentStatus()
                    status.collision_count = (status.collision_count or 0) + 1
                    bumped.status = status
                    await self.client.update_status(bumped)
                    raise
                return  # ours, created by an earlier sync: the informer will bring it
        for name in sorted(set(plan.scale) | set(plan.annotate)):
            rs = by_name.get(name)
            if rs is None:
                continue
            fresh = rs.copy_deep()
            if name in plan.scale:
                fresh.spec.replicas = plan.scale[name]
            if name in plan.annotate:
                fresh.metadata.annotations = {**(fresh.metadata.annotations or {}), **plan.annotate[name]}
            await self.client.update(fresh)
        for name in plan.delete:
            rs = by_name.get(name)
            try:
                await self.client.delete(ReplicaSet, name, namespace=d.metadata.namespace,
                                         uid=rs.metadata.uid if rs else None)
            except NotFound:
                pass
        for type_, reason, message in plan.events:
            self.recorder.event(d, "Normal" if type_ == "Normal" else "Warning", reason, message)
        current = d
        ann = d.metadata.annotations or {}
        if plan.revision is not None and ann.get(core.REVISION) != plan.revision:
            fresh_d = d.copy_deep()
            fresh_d.metadata.annotations = {**ann, core.REVISION: plan.revision}
            current = await self.client.update(fresh_d)
        if d.status is None or plan.status.to_dict() != d.status.to_dict():
            await write_status(self.client, current, plan.status)
