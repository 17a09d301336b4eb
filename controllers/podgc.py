"""Pod garbage collector: pods bound to a Node that no longer exists are deleted at once
(grace period 0: no kubelet is left to confirm a graceful deletion), so their ReplicaSets
replace them elsewhere. Kubernetes' podgc controller does the same for "orphaned" pods.

    node deleted / periodic sweep --> queue of node names --> sync(name): node gone from the
        cache *and* from the API server (live GET: a new node may not be cached yet)?
        -> force-delete every pod bound to it
"""

from __future__ import annotations

import asyncio
import logging

from api.client import Client
from api.core import Node, Pod
from api.errors import NotFound
from api.events import EventRecorder
from api.worker import run_workers
from api.workqueue import WorkQueue
from controllers.shared import Informers

log = logging.getLogger(__name__)
SWEEP_PERIOD = 20.0


class PodGarbageCollector:
    def __init__(self, client: Client, informers: Informers, recorder: EventRecorder, *,
                 sweep_period: float = SWEEP_PERIOD) -> None:
        self.client = client
        self.inf = informers
        self.recorder = recorder
        self.sweep_period = sweep_period
        self.queue = WorkQueue(name="pod-gc")

    def register(self) -> None:
        self.inf.nodes.add_handler(on_delete=lambda n: self.queue.add(n.metadata.name or ""))

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._sweep())
            await run_workers(self.queue, self.sync, workers=1, name="pod-gc")
            raise asyncio.CancelledError  # the queue was shut down: stop the sweeper too

    async def _sweep(self) -> None:
        """Catch pods bound to nodes that were deleted while no controller-manager ran."""
        while True:
            for pod in self.inf.pods.list():
                name = pod.spec.node_name
                if name and self.inf.nodes.get(name) is None:
                    self.queue.add(name)
            await asyncio.sleep(self.sweep_period)

    async def sync(self, node_name: str) -> None:
        if self.inf.nodes.get(node_name) is not None:
            return
        pods = self.inf.pods.by_index("node", node_name)
        if not pods:
            return
        try:
            await self.client.get(Node, node_name)
            return  # it exists: our cache is behind
        except NotFound:
            pass
        for pod in pods:
            ns, name = pod.metadata.namespace or "default", pod.metadata.name or ""
            log.info("pod-gc: deleting %s/%s, bound to deleted node %s", ns, name, node_name)
            self.recorder.event(pod, "Normal", "PodGCOrphaned", f"Node {node_name} is gone: deleting Pod {ns}/{name}")
            try:
                await self.client.delete(Pod, name, namespace=ns, grace_period_seconds=0, uid=pod.metadata.uid)
            except NotFound:
                pass
