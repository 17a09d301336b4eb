"""Node lifecycle controller: notice nodes that stop heartbeating, mark them, taint them,
evict their pods; untaint them when they come back (decisions in nodelifecycle_core).

    node/lease events + a monitor tick every `monitor_period` --> queue of node names
        --> sync(name): heartbeat seen? -> Ready=Unknown + unreachable taints; evict pods

Heartbeats are a node's Lease in `kube-node-lease` (renewTime) and its Ready condition's
lastHeartbeatTime. The controller records *when it saw either change*, on its own clock, and
compares that with the grace period: the node's clock never matters. After a restart every
node gets a full grace period from the controller's start, as in Kubernetes.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from api.client import Client
from api.coordination import Lease
from api.core import Node, NodeSpec, Pod, PodStatus
from api.errors import NotFound
from api.events import EventRecorder
from api.informer import object_key
from api.worker import run_workers
from api.workqueue import WorkQueue
from controllers import nodelifecycle_core as core
from controllers.shared import NODE_LEASE_NAMESPACE, Informers, write_status

log = logging.getLogger(__name__)


class NodeLifecycleController:
    def __init__(self, client: Client, informers: Informers, recorder: EventRecorder, *, grace: float = 40,
                 eviction_timeout: float = 300) -> None:
        self.client = client
        self.inf = informers
        self.recorder = recorder
        self.grace = grace
        self.eviction_timeout = eviction_timeout
        self.monitor_period = min(5.0, max(0.2, grace / 5))
        self.queue = WorkQueue(name="node-lifecycle")
        # node name -> (heartbeat signature, when this controller first saw it)
        self._seen: dict[str, tuple[tuple[str, str], datetime]] = {}

    def register(self) -> None:
        self.inf.nodes.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n),
                                   on_delete=self._forget)
        self.inf.leases.add_handler(on_add=self._enqueue_lease, on_update=lambda _o, n: self._enqueue_lease(n))

    async def run(self, *, workers: int = 2) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._monitor())
            await run_workers(self.queue, self.sync, workers=workers, name="node-lifecycle")
            raise asyncio.CancelledError  # the queue was shut down: stop the monitor too

    async def _monitor(self) -> None:
        while True:
            for name in self.inf.nodes.keys():
                self.queue.add(name)
            await asyncio.sleep(self.monitor_period)

    def _enqueue(self, node: Node) -> None:
        self.queue.add(object_key(node))

    def _enqueue_lease(self, lease: Lease) -> None:
        self.queue.add(lease.metadata.name or "")

    def _forget(self, node: Node) -> None:
        self._seen.pop(node.metadata.name or "", None)

    def _last_heartbeat(self, node: Node, now: datetime) -> datetime:
        name = node.metadata.name or ""
        lease = self.inf.leases.get(f"{NODE_LEASE_NAMESPACE}/{name}")
        renew = lease.spec.renew_time if lease is not None and lease.spec else None
        ready = node.status.condition("Ready") if node.status else None
        sig = (str(renew), str(ready.last_heartbeat_time if ready else None))
        seen = self._seen.get(name)
        if seen is None or seen[0] != sig:
            self._seen[name] = (sig, now)
            return now
        return seen[1]

    async def sync(self, name: str) -> None:
        node = self.inf.nodes.get(name)
        if node is None:
            return
        now = datetime.now(UTC)
        pods = self.inf.pods.by_index("node", name)
        d = core.decide(node, pods, last_heartbeat=self._last_heartbeat(node, now), now=now, grace=self.grace,
                        eviction_timeout=self.eviction_timeout)
        if d.conditions is not None:
            fresh = node.copy_deep()
            assert fresh.status is not None
            fresh.status.conditions = d.conditions
            node = await self.client.update_status(fresh)
            if d.became_unreachable:
                log.info("node %s: no heartbeat for %gs, marking it Unknown", name, self.grace)
                self.recorder.event(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
        if d.taints is not None:
            fresh = node.copy_deep()
            if fresh.spec is None:
                fresh.spec = NodeSpec()
            fresh.spec.taints = d.taints or None
            await self.client.update(fresh)
        for pod in d.mark_not_ready:
            await self._mark_not_ready(pod)
        for pod in d.evict:
            await self._evict(pod)
        if d.requeue_after is not None:
            self.queue.add_after(name, d.requeue_after)

    async def _mark_not_ready(self, pod: Pod) -> None:
        status = (pod.status or PodStatus()).copy_deep()
        at = datetime.now(UTC)
        for cond in status.conditions or []:
            if cond.type in ("Ready", "ContainersReady") and cond.status == "True":
                cond.status, cond.reason, cond.last_transition_time = "False", "NodeNotReady", at
                cond.message = "the node stopped reporting"
        await write_status(self.client, pod, status)

    async def _evict(self, pod: Pod) -> None:
        ns, pname = pod.metadata.namespace or "default", pod.metadata.name or ""
        self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {ns}/{pname}")
        try:
            await self.client.delete(Pod, pname, namespace=ns, uid=pod.metadata.uid)
        except NotFound:
            pass
