"""Fixtures for controller integration tests: hollow nodes, the real scheduler and a
controller-manager that a test can stop and start again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from api.apps import Deployment
from api.client import Client
from api.core import Pod
from controllers.manager import run_controller_manager
from controllers.podutil import is_active, is_ready
from scheduler.run import run_scheduler
from tests.hollow import HollowCluster


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = 20.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if await check():
            return
        if loop.time() > deadline:
            raise AssertionError(f"not met within {timeout}s: {what}")
        await asyncio.sleep(0.05)


def deployment(name: str, replicas: int, image: str = "web:1", *, namespace: str = "default",
               surge: int | str | None = None, unavailable: int | str | None = None, **spec: Any) -> Deployment:
    strategy: dict[str, Any] = {"type": "RollingUpdate", "rollingUpdate": {}}
    if surge is not None:
        strategy["rollingUpdate"]["maxSurge"] = surge
    if unavailable is not None:
        strategy["rollingUpdate"]["maxUnavailable"] = unavailable
    return Deployment.from_dict({
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "strategy": strategy,
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": image}]}}, **spec},
    })


@dataclass
class Manager:
    client: Client
    kwargs: dict[str, Any]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(run_controller_manager(self.client, stop=self.stop, **self.kwargs))

    async def kill(self) -> None:
        """Cancel abruptly, mid-whatever, like a killed process."""
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def shutdown(self) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)


@dataclass
class Cluster:
    client: Client
    hollow: HollowCluster
    manager: Manager

    async def pods(self, namespace: str = "default", app: str | None = None) -> list[Pod]:
        selector = f"app={app}" if app else None
        return (await self.client.list(Pod, namespace=namespace, label_selector=selector)).items

    async def ready_pods(self, namespace: str = "default", app: str | None = None) -> list[Pod]:
        return [p for p in await self.pods(namespace, app) if is_active(p) and is_ready(p)]

    async def rolled_out(self, name: str, namespace: str = "default") -> bool:
        """What `kubectl rollout status` waits for."""
        d = await self.client.get(Deployment, name, namespace=namespace)
        st = d.status
        if st is None or (st.observed_generation or 0) < (d.metadata.generation or 0):
            return False
        want = d.spec.replicas or 0
        return (st.updated_replicas or 0) >= want and (st.replicas or 0) <= (st.updated_replicas or 0) and \
            (st.available_replicas or 0) >= (st.updated_replicas or 0)


@contextlib.asynccontextmanager
async def cluster(client: Client, *, nodes: int = 3, ready_delay: float = 0.0,
                  **manager_kwargs: Any) -> AsyncIterator[Cluster]:
    manager_kwargs.setdefault("leader_elect", False)
    async with HollowCluster(client, lease_renew=0.2, status_every=0.5, workers=8) as hc:
        for i in range(nodes):
            await hc.add_node(f"hollow-{i}", ready_delay=ready_delay)
        stop = asyncio.Event()
        sched = asyncio.create_task(run_scheduler(client, stop=stop, leader_elect=False))
        mgr = Manager(client, manager_kwargs)
        mgr.start()
        try:
            yield Cluster(client, hc, mgr)
        finally:
            stop.set()
            if mgr.task is not None and not mgr.task.done():
                await mgr.shutdown()
            await asyncio.wait_for(sched, 10)
