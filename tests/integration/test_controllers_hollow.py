"""The hollow node helper itself: registration, lease renewal, pod status driving."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from api.client import Client
from api.coordination import Lease
from api.core import Container, Node, Pod, PodSpec
from api.errors import NotFound
from api.meta import ObjectMeta
from tests.hollow import LEASE_NAMESPACE, HollowCluster


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def test_hollow_node_registers_renews_and_drives_pods(client: Client) -> None:
    async with HollowCluster(client, lease_renew=0.1, status_every=0.2) as hc:
        node = await hc.add_node("hollow-a", cpu="2", ready_delay=0.3)
        got = await client.get(Node, "hollow-a")
        assert got.status is not None and got.status.capacity == {"cpu": "2", "memory": "8Gi", "pods": "110"}
        ready = got.status.condition("Ready")
        assert ready is not None and ready.status == "True"
        first = await client.get(Lease, "hollow-a", namespace=LEASE_NAMESPACE)
        await asyncio.sleep(0.3)
        second = await client.get(Lease, "hollow-a", namespace=LEASE_NAMESPACE)
        assert first.spec and second.spec and second.spec.renew_time != first.spec.renew_time

        pod = Pod(metadata=ObjectMeta(name="p1", namespace="default"),
                  spec=PodSpec(containers=[Container(name="c", image="busybox")], node_name="hollow-a"))
        await client.create(pod)

        async def phase_running() -> bool:
            p = await client.get(Pod, "p1", namespace="default")
            return p.status is not None and p.status.phase == "Running"

        async def ready_true() -> bool:
            p = await client.get(Pod, "p1", namespace="default")
            return any(c.type == "Ready" and c.status == "True" for c in (p.status and p.status.conditions) or [])

        await eventually(phase_running)
        await eventually(ready_true)

        node.stop()
        await asyncio.sleep(0.3)
        stopped = await client.get(Lease, "hollow-a", namespace=LEASE_NAMESPACE)
        await asyncio.sleep(0.3)
        assert (await client.get(Lease, "hollow-a", namespace=LEASE_NAMESPACE)).spec == stopped.spec
        node.resume()

        await client.delete(Pod, "p1", namespace="default")

        async def gone() -> bool:
            try:
                await client.get(Pod, "p1", namespace="default")
            except NotFound:
                return True
            return False

        await eventually(gone)
        await hc.remove_node("hollow-a")
