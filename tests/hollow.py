"""Hollow nodes (like Kubernetes' kubemark): Node objects without a machine behind them.

A `HollowCluster` registers Nodes with a capacity, renews each node's Lease in
`kube-node-lease`, keeps each node's Ready condition True, and plays the kubelet for the
pods bound to its nodes: a bound pod becomes Running and Ready (after `ready_delay`
seconds), and a pod being deleted (deletionTimestamp set) is confirmed gone at once, as a
kubelet does once its containers have stopped.

    async with HollowCluster(client, lease_renew=0.5) as hc:
        nodes = [await hc.add_node(f"hollow-{i}") for i in range(5)]
        nodes[0].stop()      # the node "fails": no more lease renewals, pods left as they are
        nodes[0].resume()    # it comes back: Ready again, pods driven again

One pod informer and one workqueue serve every node, so a hundred nodes cost one watch.
Everything runs in one TaskGroup owned by the `async with` block.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from api.base import now as time_now
from api.client import Client
from api.coordination import Lease, LeaseSpec
from api.core import (
    ContainerState,
    ContainerStateRunning,
    ContainerStatus,
    Namespace,
    Node,
    NodeAddress,
    NodeCondition,
    NodeSpec,
    NodeStatus,
    NodeSystemInfo,
    Pod,
    PodCondition,
    PodIP,
    PodStatus,
    Taint,
)
from api.errors import AlreadyExists, ApiError, Conflict, NotFound
from api.informer import Informer, object_key
from api.meta import ObjectMeta
from api.worker import run_workers
from api.workqueue import WorkQueue

__all__ = ["HollowCluster", "HollowNode"]

log = logging.getLogger(__name__)
LEASE_NAMESPACE = "kube-node-lease"


@dataclass
class HollowNode:
    name: str
    cpu: str = "4"
    memory: str = "8Gi"
    pods: str = "110"
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[Taint] = field(default_factory=list)
    address: str = "127.0.0.1"
    ready_delay: float = 0.0
    running: bool = True
    _resumed: bool = False
    # pod uid -> loop time at which the pod may turn Ready
    _ready_at: dict[str, float] = field(default_factory=dict)

    def stop(self) -> None:
        """Simulate a node failure: stop renewing the Lease and driving pods."""
        self.running = False

    def resume(self) -> None:
        self.running = True
        self._resumed = True  # write Ready=True at the next heartbeat, like a restarted kubelet

    def node_object(self) -> Node:
        capacity = {"cpu": self.cpu, "memory": self.memory, "pods": self.pods}
        return Node(
            metadata=ObjectMeta(name=self.name, labels={"kubernetes.io/hostname": self.name,
                                                        "kubernetes.io/os": "linux",
                                                        "kubelite.io/hollow": "true", **self.labels}),
            spec=NodeSpec(taints=list(self.taints) or None),
            status=NodeStatus(
                capacity=capacity, allocatable=dict(capacity), phase="Running",
                conditions=_conditions(time_now()),
                addresses=[NodeAddress(type="InternalIP", address=self.address),
                           NodeAddress(type="Hostname", address=self.name)],
                node_info=NodeSystemInfo(kubelet_version="v1.30.0-hollow", operating_system="linux",
                                         architecture="amd64", container_runtime_version="hollow://0"),
            ),
        )


def _conditions(at: datetime) -> list[NodeCondition]:
    def cond(type_: str, status: str, reason: str, message: str) -> NodeCondition:
        return NodeCondition(type=type_, status=status, reason=reason, message=message,
                             last_heartbeat_time=at, last_transition_time=at)

    return [
        cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]


def _micro_now() -> datetime:
    return datetime.now(UTC)


class HollowCluster:
    def __init__(self, client: Client, *, lease_renew: float = 1.0, lease_duration: int = 40,
                 status_every: float = 2.0, workers: int = 4) -> None:
        self.client = client
        self.lease_renew = lease_renew
        self.lease_duration = lease_duration
        self.status_every = status_every
        self.nodes: dict[str, HollowNode] = {}
        self.pods = Informer(client, Pod, indexers={"node": lambda p: [p.spec.node_name or ""]})
        self.queue = WorkQueue(name="hollow-pods")
        self._workers = workers
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    async def __aenter__(self) -> Self:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self.pods.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n),
                              on_delete=lambda p: self._ready_forget(p))
        self._tasks.append(self._tg.create_task(self.pods.run(), name="hollow-pod-informer"))
        self._tasks.append(self._tg.create_task(
            run_workers(self.queue, self._sync_pod, workers=self._workers, name="hollow-pods")))
        self._tasks.append(self._tg.create_task(self._heartbeat_loop(), name="hollow-heartbeats"))
        await self.pods.wait_synced(timeout=30)
        with contextlib.suppress(AlreadyExists):
            await self.client.create(Namespace(metadata=ObjectMeta(name=LEASE_NAMESPACE)))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.queue.shut_down()
        for task in self._tasks:
            task.cancel()
        assert self._tg is not None
        with contextlib.suppress(asyncio.CancelledError):
            await self._tg.__aexit__(None, None, None)

    # ------------------------------------------------------------ nodes

    async def add_node(self, name: str, **kwargs: Any) -> HollowNode:
        """Register (or re-register) a Node and its Lease; its pods are driven from now on."""
        node = HollowNode(name=name, **kwargs)
        self.nodes[name] = node
        obj = node.node_object()
        try:
            created = await self.client.create(obj)
        except AlreadyExists:
            created = await self.client.get(Node, name)
        await self._put_status(node, created)
        await self._renew(node)
        for pod in self.pods.by_index("node", name):
            self._enqueue(pod)
        return node

    async def remove_node(self, name: str) -> None:
        self.nodes.pop(name, None)
        with contextlib.suppress(NotFound):
            await self.client.delete(Node, name)
        with contextlib.suppress(NotFound):
            await self.client.delete(Lease, name, namespace=LEASE_NAMESPACE)

    async def _renew(self, node: HollowNode) -> None:
        spec = {"holderIdentity": node.name, "leaseDurationSeconds": self.lease_duration,
                "renewTime": LeaseSpec(renew_time=_micro_now()).to_dict()["renewTime"]}
        try:
            await self.client.patch(Lease, node.name, {"spec": spec}, namespace=LEASE_NAMESPACE)
        except NotFound:
            lease = Lease(metadata=ObjectMeta(name=node.name, namespace=LEASE_NAMESPACE),
                          spec=LeaseSpec.model_validate(spec))
            with contextlib.suppress(AlreadyExists):
                await self.client.create(lease)

    async def _put_status(self, node: HollowNode, current: Node) -> None:
        """Write the kubelet's view of the node (Ready) unless it already says so."""
        ready = current.status.condition("Ready") if current.status else None
        if ready is not None and ready.status == "True" and current.status and current.status.capacity:
            return
        fresh = current.copy_deep()
        fresh.status = node.node_object().status
        with contextlib.suppress(Conflict):
            await self.client.update_status(fresh)

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_status = 0.0
        while True:
            status_due = loop.time() - last_status >= self.status_every
            for node in list(self.nodes.values()):
                if not node.running:
                    continue
                try:
                    await self._renew(node)
                    if status_due or node._resumed:
                        node._resumed = False
                        await self._put_status(node, await self.client.get(Node, node.name))
                except (ApiError, ConnectionError, TimeoutError) as e:
                    log.warning("hollow node %s: heartbeat failed: %s", node.name, e)
            if status_due:
                last_status = loop.time()
                # A resumed node's pods may have been left half-driven: look at them again.
                for node in self.nodes.values():
                    if node.running:
                        for pod in self.pods.by_index("node", node.name):
                            self._enqueue(pod)
            await asyncio.sleep(self.lease_renew)

    # ------------------------------------------------------------ pods

    def _enqueue(self, pod: Pod) -> None:
        if pod.spec.node_name in self.nodes:
            self.queue.add(object_key(pod))

    def _ready_forget(self, pod: Pod) -> None:
        node = self.nodes.get(pod.spec.node_name or "")
        if node is not None:
            node._ready_at.pop(pod.metadata.uid or "", None)

    async def _sync_pod(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None:
            return
        node = self.nodes.get(pod.spec.node_name or "")
        if node is None or not node.running:
            return
        ns, name = pod.metadata.namespace or "default", pod.metadata.name or ""
        if pod.metadata.deletion_timestamp is not None:
            # The containers are "stopped": confirm the deletion, as the kubelet does.
            with contextlib.suppress(NotFound):
                await self.client.delete(Pod, name, namespace=ns, grace_period_seconds=0,
                                         uid=pod.metadata.uid)
            return
        phase = pod.status.phase if pod.status else None
        if phase in ("Succeeded", "Failed"):
            return
        loop = asyncio.get_running_loop()
        ready_at = node._ready_at.setdefault(pod.metadata.uid or "", loop.time() + node.ready_delay)
        ready = loop.time() >= ready_at
        current_ready = any(c.type == "Ready" and c.status == "True"
                            for c in (pod.status.conditions if pod.status else None) or [])
        if phase == "Running" and current_ready == ready:
            return
        fresh = pod.copy_deep()
        fresh.status = _pod_status(pod, node, ready=ready)
        try:
            await self.client.update_status(fresh)
        except Conflict:
            # Usually the scheduler's binding or a label change raced us: redo it on the live pod
            # (a second 409 retries through the workqueue).
            live = await self.client.get(Pod, name, namespace=ns)
            if live.metadata.uid != pod.metadata.uid or live.metadata.deletion_timestamp is not None:
                return
            live.status = _pod_status(live, node, ready=ready)
            await self.client.update_status(live)
        if not ready:
            self.queue.add_after(key, max(0.01, ready_at - loop.time()))


def _pod_status(pod: Pod, node: HollowNode, *, ready: bool) -> PodStatus:
    at = time_now()
    prev = pod.status or PodStatus()
    started = prev.start_time or at
    flag = "True" if ready else "False"
    conds = [
        PodCondition(type="PodScheduled", status="True", last_transition_time=started),
        PodCondition(type="Initialized", status="True", last_transition_time=started),
        PodCondition(type="ContainersReady", status=flag, last_transition_time=at),
        PodCondition(type="Ready", status=flag, last_transition_time=at),
    ]
    statuses = [ContainerStatus(name=c.name, image=c.image or "", ready=ready, started=True,
                                state=ContainerState(running=ContainerStateRunning(started_at=started)),
                                container_id=f"hollow://{pod.metadata.uid}/{c.name}")
                for c in pod.spec.containers]
    ip = _pod_ip(pod)
    return PodStatus(phase="Running", conditions=conds, host_ip=node.address,
                     host_ips=[PodIP(ip=node.address)], pod_ip=ip, pod_ips=[PodIP(ip=ip)], start_time=started,
                     container_statuses=statuses, qos_class=prev.qos_class or "BestEffort")


def _pod_ip(pod: Pod) -> str:
    # A stable fake address from the uid; hollow pods never carry traffic.
    digest = sum((pod.metadata.uid or pod.metadata.name or "").encode()) % 250
    return f"10.255.{digest}.{(len(pod.metadata.name or '') * 7) % 250 + 1}"
