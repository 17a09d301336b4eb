"""ReplicaSet controller: keep `spec.replicas` active pods matching the selector.

    pod/rs events --> queue of rs keys --> sync(key): claim pods, plan (replicaset_core),
                                           create in slow-start batches / delete, write status

Ordering and safety:
- Expectations: before creating n pods the controller expects n creations; each pod add
  it observes lowers that; a sync plans nothing new until its earlier writes are seen, so a
  lagging cache never makes it create twice. Deletions are expected by pod uid.
- Creation failures stop the batch, un-expect what was not created, record FailedCreate and
  raise: the workqueue retries the key with exponential backoff.
- Adoption and release are merge patches carrying the pod's resourceVersion, so a pod
  that changed meanwhile is re-examined (409) rather than overwritten.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from api.apps import ReplicaSet
from api.base import now
from api.client import Client
from api.core import Pod
from api.errors import ApiError, NotFound
from api.events import EventRecorder
from api.informer import object_key
from api.meta import ObjectMeta
from api.selectors import label_selector_from_dict
from api.worker import run_workers
from api.workqueue import WorkQueue
from controllers import replicaset_core as core
from controllers.shared import Informers, controller_key, controller_ref, owner_refs_patch, write_status

log = logging.getLogger(__name__)
KIND = "ReplicaSet"


class ReplicaSetController:
    def __init__(self, client: Client, informers: Informers, recorder: EventRecorder, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.inf = informers
        self.recorder = recorder
        self.clock = clock
        self.queue = WorkQueue(name="replicaset")
        self.expectations = core.Expectations()

    def register(self) -> None:
        rs = self.inf.replicasets
        rs.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n),
                       on_delete=self._rs_deleted)
        self.inf.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                                  on_delete=self._pod_deleted)

    async def run(self, *, workers: int = 2) -> None:
        await run_workers(self.queue, self.sync, workers=workers, name="replicaset")

    # ------------------------------------------------------------ handlers: enqueue only

    def _enqueue(self, rs: ReplicaSet) -> None:
        self.queue.add(object_key(rs))

    def _rs_deleted(self, rs: ReplicaSet) -> None:
        self.expectations.forget(object_key(rs))
        self.queue.add(object_key(rs))

    def _matching_sets(self, pod: Pod) -> list[str]:
        keys = []
        for rs in self.inf.replicasets.list(namespace=pod.metadata.namespace or "default"):
            if label_selector_from_dict(rs.spec.selector.to_dict()).matches(pod.metadata.labels):
                keys.append(object_key(rs))
        return keys

    def _pod_added(self, pod: Pod) -> None:
        key = controller_key(pod, KIND)
        if key is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)
        elif pod.metadata.deletion_timestamp is None:
            for k in self._matching_sets(pod):  # an orphan: whoever matches may adopt it
                self.queue.add(k)

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        key = controller_key(new, KIND)
        if key is not None and new.metadata.deletion_timestamp is not None and old.metadata.deletion_timestamp is None:
            self.expectations.deletion_observed(key, new.metadata.uid or "")
        old_key = controller_key(old, KIND)
        if old_key is not None and old_key != key:
            self.queue.add(old_key)
        if key is not None:
            self.queue.add(key)
        elif old.metadata.labels != new.metadata.labels or old_key is not None:
            for k in self._matching_sets(new):
                self.queue.add(k)

    def _pod_deleted(self, pod: Pod) -> None:
        key = controller_key(pod, KIND)
        if key is not None:
            self.expectations.deletion_observed(key, pod.metadata.uid or "")
            self.queue.add(key)

    # ------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        rs = self.inf.replicasets.get(key)
        if rs is None:
            self.expectations.forget(key)
            return
        selector = label_selector_from_dict(rs.spec.selector.to_dict())
        ns = rs.metadata.namespace or "default"
        owned, adopt, release = core.claim(self.inf.pods.list(namespace=ns), owner_uid=rs.metadata.uid or "",
                                           selector=selector)
        deleting = rs.metadata.deletion_timestamp is not None
        if not deleting:
            for pod in adopt:
                owned.append(await self.client.patch(
                    Pod, pod.metadata.name or "", owner_refs_patch(pod, add=controller_ref(rs)), namespace=ns))
        for pod in release:
            try:
                await self.client.patch(Pod, pod.metadata.name or "",
                                        owner_refs_patch(pod, remove_uids={rs.metadata.uid or ""}), namespace=ns)
            except NotFound:
                pass
        error: Exception | None = None
        if not deleting:
            desired = rs.spec.replicas if rs.spec.replicas is not None else 1
            plan = core.plan(desired, owned, expectations_satisfied=self.expectations.satisfied(key, self.clock()))
            try:
                if plan.create:
                    await self._create(rs, plan.create)
                elif plan.delete:
                    await self._delete(rs, plan.delete)
            except ApiError as e:
                error = e
        failure = None
        if error is not None:
            failure = f"{'FailedCreate' if plan.create else 'FailedDelete'}: {error}"
        await self._write_status(rs, owned, failure)
        if error is not None:
            raise error

    async def _create(self, rs: ReplicaSet, count: int) -> None:
        key = object_key(rs)
        self.expectations.expect_creations(key, count, self.clock())
        created = 0
        for batch in core.slow_start_batches(count):
            results = await asyncio.gather(*(self.client.create(self._pod_for(rs)) for _ in range(batch)),
                                           return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            created += batch - len(failures)
            if failures:
                # No watch event will come for these, nor for the batches never sent.
                self.expectations.creation_observed(key, count - created)
                self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {failures[0]}")
                for f in failures:
                    if not isinstance(f, ApiError):
                        raise f
                raise failures[0]
        if created:
            self.recorder.event(rs, "Normal", "SuccessfulCreate", f"Created {created} pod(s)"
                                if created > 1 else "Created pod")

    def _pod_for(self, rs: ReplicaSet) -> Pod:
        assert rs.spec.template is not None, "validation requires a template"
        tmpl = rs.spec.template.copy_deep()
        meta = tmpl.metadata or ObjectMeta()
        return Pod(
            metadata=ObjectMeta(generate_name=f"{rs.metadata.name}-", namespace=rs.metadata.namespace,
                                labels=meta.labels, annotations=meta.annotations,
                                owner_references=[controller_ref(rs)]),
            spec=tmpl.spec,
        )

    async def _delete(self, rs: ReplicaSet, pods: tuple[Pod, ...]) -> None:
        key = object_key(rs)
        self.expectations.expect_deletions(key, [p.metadata.uid or "" for p in pods], self.clock())
        results = await asyncio.gather(*(self.client.delete(Pod, p.metadata.name or "",
                                                            namespace=p.metadata.namespace, uid=p.metadata.uid)
                                         for p in pods), return_exceptions=True)
        for pod, result in zip(pods, results, strict=True):
            if isinstance(result, NotFound):
                self.expectations.deletion_observed(key, pod.metadata.uid or "")
            elif isinstance(result, BaseException):
                self.expectations.deletion_observed(key, pod.metadata.uid or "")
                self.recorder.event(rs, "Warning", "FailedDelete", f"Error deleting: {result}")
                raise result
            else:
                self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pod.metadata.name}")

    async def _write_status(self, rs: ReplicaSet, owned: list[Pod], failure: str | None = None) -> None:
        status, wait = core.compute_status(rs, owned, now=now(), failure=failure)
        if wait is not None:
            self.queue.add_after(object_key(rs), wait + 0.05)
        if rs.status is not None and status.to_dict() == rs.status.to_dict():
            return
        await write_status(self.client, rs, status)
