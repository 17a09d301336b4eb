"""Node IPAM controller: give each Node a distinct pod subnet (`spec.podCIDR`/`podCIDRs`)
out of the cluster CIDR, and take it back when the Node is deleted (decisions in ipam_core).

Start-up order matters: the allocator is rebuilt from every Node already carrying a podCIDR
*before* the first allocation, so a restarted controller never hands out a subnet in use.
One worker only: the allocator is in-memory state shared by every sync.
"""

from __future__ import annotations

import logging

from api.client import Client
from api.core import Node
from api.errors import NotFound
from api.events import EventRecorder
from api.informer import object_key
from api.worker import run_workers
from api.workqueue import WorkQueue
from controllers.ipam_core import CidrAllocator, CidrExhausted
from controllers.shared import Informers

log = logging.getLogger(__name__)


class NodeIpamController:
    def __init__(self, client: Client, informers: Informers, recorder: EventRecorder, *,
                 cluster_cidr: str = "10.244.0.0/16", node_prefix: int = 24) -> None:
        self.client = client
        self.inf = informers
        self.recorder = recorder
        self.allocator = CidrAllocator(cluster_cidr, node_prefix=node_prefix)
        self.queue = WorkQueue(name="node-ipam")
        self._by_node: dict[str, str] = {}

    def register(self) -> None:
        self.inf.nodes.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n),
                                   on_delete=self._enqueue)

    def _enqueue(self, node: Node) -> None:
        self.queue.add(object_key(node))

    def _occupy(self, node: Node) -> None:
        cidr = node.spec.pod_cidr if node.spec else None
        if not cidr:
            return
        try:
            self.allocator.occupy(cidr)
            self._by_node[node.metadata.name or ""] = cidr
        except ValueError:
            log.warning("node %s has podCIDR %s outside %s: leaving it alone", node.metadata.name, cidr,
                        self.allocator.network)

    async def run(self) -> None:
        """Run after the node informer has synced (the manager guarantees it)."""
        for node in self.inf.nodes.list():
            self._occupy(node)
        await run_workers(self.queue, self.sync, workers=1, name="node-ipam")

    async def sync(self, name: str) -> None:
        node = self.inf.nodes.get(name)
        if node is None:
            cidr = self._by_node.pop(name, None)
            if cidr is not None:
                self.allocator.release(cidr)
                # Nodes that found the range full are in backoff: the freed subnet is theirs now.
                for waiting in self.inf.nodes.list():
                    if waiting.spec is None or not waiting.spec.pod_cidr:
                        self.queue.add(object_key(waiting))
            return
        if node.spec is not None and node.spec.pod_cidr:
            self._occupy(node)
            return
        if name in self._by_node:
            cidr = self._by_node[name]  # allocated by an earlier sync whose write we have not seen yet
        else:
            try:
                cidr = self.allocator.allocate()
            except CidrExhausted as e:
                self.recorder.event(node, "Warning", "CIDRNotAvailable", str(e))
                raise
            self._by_node[name] = cidr
        try:
            await self.client.patch(Node, name, {"metadata": {"uid": node.metadata.uid},
                                                 "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        except NotFound:
            self._by_node.pop(name, None)
            self.allocator.release(cidr)
            return
        self.recorder.event(node, "Normal", "CIDRAssignmentSucceeded", f"Node {name} got pod CIDR {cidr}")
