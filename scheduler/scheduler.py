"""The scheduler's control loop: informers in, bindings and pod conditions out.

    informers ──handlers──> cache (nodes, bound + assumed pods)
        │                   queue (pending pods)
        │                        │ pop
        │                        v
        │    schedule(cache.snapshot(), pod, profile)        pure, see framework.py
        │          │ node                      │ FitError
        │          v                           v
        │    cache.assume(pod, node)     queue: unschedulable (or backoff)
        │    bind task: POST pods/x/binding    status: PodScheduled=False Unschedulable
        │          │ ok → Event Scheduled      Event FailedScheduling
        │          │ error → forget, backoff
        └── the bound pod comes back through the watch and confirms the assumption

Ordering constraints:

- Scheduling cycles run one at a time, in the loop task, without awaiting between
  snapshot and assume: the next cycle therefore sees every earlier decision. Only the
  bindings (I/O) run concurrently, at most `bind_concurrency` of them; when all
  slots are busy the loop waits, so bindings cannot pile up without bound.
- The binding is a separate, conditional write: the API server refuses it if the pod
  already has a node or was re-created under the same name (uid precondition).
- Handlers only update the cache and the queue; they never await.
- Cluster events that may make a waiting pod fit (node added or changed in a way
  that matters, a pod deleted or finished, an assumption dropped) move unschedulable
  pods back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, Protocol

from api.base import KubeModel
from api.base import now as wall_now
from api.client import Client
from api.core import Node, Pod, PodCondition, PodStatus
from api.errors import ApiError, Conflict, NotFound
from api.informer import Informer
from scheduler.cache import SchedulerCache, is_terminal
from scheduler.framework import Profile, schedule
from scheduler.nodeinfo import PodInfo, pod_key
from scheduler.plugins import default_profile
from scheduler.queue import QueueClosed, QueuedPod, SchedulingQueue

__all__ = [
    "DEFAULT_SCHEDULER_NAME",
    "EventSink",
    "Scheduler",
    "node_changed_for_scheduling",
    "unschedulable_status",
]

log = logging.getLogger("kubelite.scheduler")

DEFAULT_SCHEDULER_NAME = "default-scheduler"
# Finished pods hold nothing on their node and need no node: the scheduler never sees them.
# (A pod that finishes leaves this selector, which the watch reports as a deletion.)
LIVE_PODS_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"


class EventSink(Protocol):
    """Where Events go (api.events.EventRecorder); must not block."""

    def event(self, obj: KubeModel, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None: ...


# ---------------------------------------------------------------- pure helpers


def unschedulable_status(pod: Pod, message: str, now: datetime) -> PodStatus | None:
    """The pod's status with PodScheduled=False/Unschedulable/message, or None if already so.

    Rewriting an identical condition would be a write per retry for nothing, and a
    watch event that wakes everyone who watches pods.
    """
    status = pod.status.model_copy(deep=True) if pod.status else PodStatus(phase="Pending")
    current = status.condition("PodScheduled")
    if current and (current.status, current.reason, current.message) == ("False", "Unschedulable", message):
        return None
    changed_at = current.last_transition_time if current and current.status == "False" else None
    condition = PodCondition(
        type="PodScheduled",
        status="False",
        reason="Unschedulable",
        message=message,
        last_probe_time=None,
        last_transition_time=changed_at or now,
    )
    others = [c for c in status.conditions or [] if c.type != "PodScheduled"]
    status.conditions = [*others, condition]
    return status


def node_changed_for_scheduling(old: Node, new: Node) -> bool:
    """Whether a node update can change a filter's verdict (heartbeats alone cannot)."""

    def view(node: Node) -> tuple[Any, ...]:
        status = node.status
        ready = status.condition("Ready") if status else None
        return (
            node.metadata.labels,
            node.spec.model_dump() if node.spec else None,
            (status.allocatable or status.capacity) if status else None,
            ready.status if ready else None,
        )

    return view(old) != view(new)


def _freeze_heap() -> None:
    """Keep the cyclic garbage collector off long-lived objects.

    Python runs a full collection whenever the long-lived heap has grown by a quarter, and
    each one walks every object: the loaded modules (pydantic schemas, aiohttp) and, after
    a sync, the informer caches with every node and live pod. While thousands of pending
    pods are listed and the queue drains, those walks found nothing to free yet cost a
    sixth of the scheduler's CPU in the 5,000-pod benchmark. `gc.freeze()` moves what is
    alive now to a permanent generation that collections skip; reference counting still
    frees those objects when they are dropped, so only reference cycles among them would
    outlive their use. (No collection first: that would be the very walk this avoids; the
    few cycles of garbage alive at that instant are kept, once.)
    """
    gc.freeze()


# ---------------------------------------------------------------- the loop


class Scheduler:
    def __init__(
        self,
        client: Client,
        *,
        recorder: EventSink,
        profile: Profile | None = None,
        scheduler_name: str = DEFAULT_SCHEDULER_NAME,
        bind_concurrency: int = 64,
        assumed_ttl: float = 30.0,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        unschedulable_timeout: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.profile = profile or default_profile(scheduler_name)
        self.scheduler_name = scheduler_name
        self.clock = clock
        self.cache = SchedulerCache(assumed_ttl=assumed_ttl)
        self.queue = SchedulingQueue(
            initial_backoff=initial_backoff,
            max_backoff=max_backoff,
            unschedulable_timeout=unschedulable_timeout,
            clock=clock,
        )
        self._bind_slots = asyncio.Semaphore(bind_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self.bound = 0  # bindings that succeeded, for benchmarks and tests

        # One pod informer whose handlers route by spec.nodeName, as kube-scheduler does:
        # two informers (spec.nodeName= and spec.nodeName!=) would see every binding
        # twice (a deletion from one, an addition to the other), doubling the decoding
        # here and the watch fan-out in the API server, which are the costliest parts
        # of a binding after the write itself.
        self.nodes: Informer[Node] = Informer(client, Node)
        self.pods: Informer[Pod] = Informer(client, Pod, field_selector=LIVE_PODS_SELECTOR)
        self.nodes.add_handler(on_add=self._node_added, on_update=self._node_updated, on_delete=self._node_deleted)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)

    # ------------------------------------------------------------ lifetime

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Schedule until `stop` is set (or the task is cancelled); then shut down cleanly."""
        stop = stop or asyncio.Event()
        _freeze_heap()  # the modules, before the lists grow the heap
        async with asyncio.TaskGroup() as tg:
            informers = [
                tg.create_task(self.nodes.run(), name="scheduler-nodes"),
                tg.create_task(self.pods.run(), name="scheduler-pods"),
            ]
            # Pods are only tried once nodes and bound pods are known, else the first
            # cycles would decide on an empty cluster.
            await self._until_stopped(asyncio.gather(self.nodes.wait_synced(), self.pods.wait_synced()), stop)
            if not stop.is_set():
                _freeze_heap()  # the caches the lists filled
                loops = [
                    tg.create_task(self._schedule_loop(), name="scheduler-loop"),
                    tg.create_task(self._housekeeping(), name="scheduler-housekeeping"),
                ]
                await stop.wait()
                for task in loops:
                    task.cancel()
            self.queue.close()
            # Let bindings already sent finish (bounded), so no pod is left half-done.
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=5)
            leftovers = list(self._tasks)
            for task in [*informers, *leftovers]:
                task.cancel()
            await asyncio.gather(*leftovers, return_exceptions=True)

    @staticmethod
    async def _until_stopped(work: asyncio.Future[Any], stop: asyncio.Event) -> None:
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self.cache.cleanup_expired(self.clock()):
                self.queue.move_all()  # capacity came back

    async def _schedule_loop(self) -> None:
        while True:
            await self._bind_slots.acquire()
            try:
                qp = await self.queue.pop()
            except QueueClosed:
                self._bind_slots.release()
                return
            try:
                binding = self.schedule_one(qp)
            except Exception:
                log.exception("scheduling %s failed", qp.key)
                self.queue.requeue_backoff(qp)
                binding = None
            if binding is None:
                self._bind_slots.release()
            else:
                task = asyncio.create_task(binding, name=f"bind-{qp.key}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            # Yield now and then so informer events and bindings make progress
            # while a long queue is drained.
            await asyncio.sleep(0)

    # ------------------------------------------------------------ one cycle

    def schedule_one(self, qp: QueuedPod) -> Any:
        """Run one scheduling cycle; return the binding coroutine to start, or None."""
        pod = qp.pod
        if pod.spec.node_name or pod.metadata.deletion_timestamp is not None:
            self.queue.done(qp.key)
            return None
        known = self.cache.uid_of(qp.key)
        if known is not None:
            if known == pod.metadata.uid:
                self.queue.done(qp.key)  # already bound or being bound
            else:
                self.queue.requeue_backoff(qp)  # a previous pod of that name is still going away
            return None
        info = PodInfo.from_pod(pod)
        result = schedule(self.cache.snapshot(), info, self.profile)
        if result.node_name is None:
            assert result.error is not None
            self.queue.requeue_unschedulable(qp)
            self._spawn(self._report_unschedulable(pod, result.error.message), f"report-{qp.key}")
            return None
        self.cache.assume(info, result.node_name)
        return self._bind(qp, info, result.node_name)

    async def _bind(self, qp: QueuedPod, info: PodInfo, node_name: str) -> None:
        pod = info.pod
        try:
            await self.client.bind(pod, node_name)
        except NotFound:
            self.cache.forget(qp.key)
            self.queue.delete(qp.key)  # the pod is gone
        except Conflict as e:
            # Bound by someone else, or re-created: the informers will tell which.
            log.info("binding %s to %s: %s", qp.key, node_name, e)
            self.cache.forget(qp.key)
            self.queue.requeue_backoff(qp)
        except (ApiError, ConnectionError, TimeoutError) as e:
            log.warning("binding %s to %s failed: %s", qp.key, node_name, e)
            self.cache.forget(qp.key)
            self.queue.requeue_backoff(qp)
            self.queue.move_all()  # the capacity it held is free again
        else:
            self.bound += 1
            self.cache.finish_binding(qp.key, self.clock())
            self.queue.done(qp.key)
            self.recorder.event(
                pod, "Normal", "Scheduled",
                f"Successfully assigned {pod.metadata.namespace or 'default'}/{pod.metadata.name} to {node_name}",
            )
        finally:
            self._bind_slots.release()

    async def _report_unschedulable(self, pod: Pod, message: str) -> None:
        self.recorder.event(pod, "Warning", "FailedScheduling", message)
        name, namespace, uid = pod.metadata.name or "", pod.metadata.namespace, pod.metadata.uid
        for _ in range(3):
            status = unschedulable_status(pod, message, wall_now())
            if status is None or pod.spec.node_name:
                return
            update = pod.model_copy(update={"status": status})
            try:
                await self.client.update_status(update)
                return
            except Conflict:
                try:
                    pod = await self.client.get(Pod, name, namespace=namespace)
                except (ApiError, ConnectionError, TimeoutError):
                    return
                if pod.metadata.uid != uid:
                    return
            except NotFound:
                return
            except (ApiError, ConnectionError, TimeoutError) as e:
                log.warning("recording why %s/%s is unschedulable failed: %s", namespace, name, e)
                return

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ informer handlers

    def _responsible_for(self, pod: Pod) -> bool:
        return (pod.spec.scheduler_name or DEFAULT_SCHEDULER_NAME) == self.scheduler_name

    def _pod_added(self, pod: Pod) -> None:
        if pod.spec.node_name:
            self.cache.add_pod(pod)
            self.queue.delete(pod_key(pod))
        elif self._responsible_for(pod) and not is_terminal(pod):
            self.queue.add(pod)

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        if new.spec.node_name:
            self.cache.update_pod(new)
            if not old.spec.node_name:
                self.queue.delete(pod_key(new))  # bound (by us or by someone else)
            elif is_terminal(new) and not is_terminal(old):
                self.queue.move_all()
        elif self._responsible_for(new) and not is_terminal(new):
            self.queue.add(new)

    def _pod_deleted(self, pod: Pod) -> None:
        if pod.spec.node_name:
            self.cache.remove_pod(pod)
            self.queue.move_all()  # its node has room again
        else:
            self.queue.delete(pod_key(pod))

    def _node_added(self, node: Node) -> None:
        self.cache.add_node(node)
        self.queue.move_all()

    def _node_updated(self, old: Node, new: Node) -> None:
        self.cache.update_node(new)
        if node_changed_for_scheduling(old, new):
            self.queue.move_all()

    def _node_deleted(self, node: Node) -> None:
        self.cache.remove_node(node.metadata.name or "")
