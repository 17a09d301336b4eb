"""The controller-manager: every controller of the cluster in one process, sharing informers.

    run_controller_manager
      └─ LeaderElector (Lease kube-system/kube-controller-manager), if leader_elect
           └─ _run_all: informers (pods, replicasets, deployments, nodes, leases, namespaces,
                        services, endpoints, endpointslices)
                └─ wait for every cache to sync, then the controllers' workers:
                   deployment, replicaset, garbage collector, namespace, node lifecycle, node IPAM,
                   pod GC (pods of deleted nodes), endpointslice, endpoints

Lifetimes: everything runs in one TaskGroup; setting `stop` shuts the queues down and cancels
the informers. If any controller or informer dies with an error, the others are cancelled and
the error propagates (the process exits non-zero with the reason instead of limping on).
Losing leadership stops every controller before anything else can act; the manager then
campaigns again, with fresh caches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import Awaitable

from api.client import Client
from api.events import EventRecorder
from api.leaderelection import LeaderElector
from controllers.deployment import DeploymentController
from controllers.endpoints import EndpointsController
from controllers.endpointslice import EndpointSliceController
from controllers.gc import GarbageCollector
from controllers.ipam import NodeIpamController
from controllers.namespace import NamespaceController
from controllers.nodelifecycle import NodeLifecycleController
from controllers.podgc import PodGarbageCollector
from controllers.replicaset import ReplicaSetController
from controllers.shared import Controller, Informers

__all__ = ["LEASE_NAME", "run_controller_manager"]

log = logging.getLogger(__name__)
LEASE_NAME = "kube-controller-manager"
SYNC_TIMEOUT = 60.0


async def run_controller_manager(
    client: Client,
    *,
    node_monitor_grace_period: float = 40,
    pod_eviction_timeout: float = 300,
    cluster_cidr: str = "10.244.0.0/16",
    leader_elect: bool = True,
    stop: asyncio.Event | None = None,
    identity: str | None = None,
) -> None:
    """Run every controller until `stop` is set (forever if None)."""
    stop = stop or asyncio.Event()

    async def run_all() -> None:
        await _run_all(client, stop, grace=node_monitor_grace_period, eviction=pod_eviction_timeout,
                       cluster_cidr=cluster_cidr)

    if not leader_elect:
        await run_all()
        return
    identity = identity or f"{socket.gethostname()}_{uuid.uuid4()}"
    while not stop.is_set():
        elector = LeaderElector(client, name=LEASE_NAME, namespace="kube-system", identity=identity)
        await _until_stopped(elector.run(run_all), stop)
        if not stop.is_set():
            log.warning("controller-manager %s: lost leadership; campaigning again", identity)


async def _until_stopped(work: Awaitable[None], stop: asyncio.Event) -> None:
    """Await `work`, cancelling it when `stop` is set."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _run_all(client: Client, stop: asyncio.Event, *, grace: float, eviction: float, cluster_cidr: str) -> None:
    informers = Informers.create(client)
    async with EventRecorder(client, component="controller-manager", host=socket.gethostname()) as recorder:
        deployment = DeploymentController(client, informers, recorder)
        replicaset = ReplicaSetController(client, informers, recorder)
        gc = GarbageCollector(client, informers)
        namespace = NamespaceController(client, informers)
        lifecycle = NodeLifecycleController(client, informers, recorder, grace=grace, eviction_timeout=eviction)
        ipam = NodeIpamController(client, informers, recorder, cluster_cidr=cluster_cidr)
        podgc = PodGarbageCollector(client, informers, recorder)
        slices = EndpointSliceController(client, informers, recorder)
        endpoints = EndpointsController(client, informers)
        controllers: list[Controller] = [deployment, replicaset, gc, namespace, lifecycle, ipam, podgc, slices,
                                         endpoints]
        for c in controllers:
            c.register()
        try:
            async with asyncio.TaskGroup() as tg:
                for inf in informers.all():
                    tg.create_task(inf.run(), name=f"informer-{inf.name}")
                async with asyncio.timeout(SYNC_TIMEOUT):
                    for inf in informers.all():
                        await inf.wait_synced()
                log.info("controller-manager: caches synced, starting controllers")
                for c in controllers:
                    tg.create_task(c.run(), name=f"controller-{type(c).__name__}")
                await stop.wait()
                raise _Stopped
        except* _Stopped:
            pass
        finally:
            for c in controllers:
                c.queue.shut_down()


class _Stopped(Exception):
    """Raised inside the TaskGroup to cancel every task when `stop` is set."""
