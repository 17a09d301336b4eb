"""The scheduler against a real etcd and API server, with hollow nodes."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from api.base import KubeModel
from api.client import Client
from api.core import Event, Namespace, Node, Pod
from api.errors import AlreadyExists
from api.events import EventRecorder
from api.meta import ObjectMeta
from scheduler import run_scheduler
from scheduler.scheduler import Scheduler
from tests.hollow import HollowCluster

pytestmark = pytest.mark.slow


@dataclass
class Events:
    """Records what the scheduler reports, and writes it as Events like the real scheduler."""

    recorder: EventRecorder
    seen: list[tuple[str, str, str, str]] = field(default_factory=list)

    def event(self, obj: KubeModel, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        meta = getattr(obj, "metadata", None)
        self.seen.append((getattr(meta, "name", ""), type_, reason, message))
        self.recorder.event(obj, type_, reason, message)

    def reasons(self, name: str) -> list[str]:
        return [reason for pod, _, reason, _ in self.seen if pod == name]


async def api_events(client: Client, pod_name: str) -> list[tuple[str, str, str]]:
    listed = await client.list(Event, namespace="default")
    return [(e.type or "", e.reason or "", e.message or "") for e in listed.items
            if e.involved_object.name == pod_name]


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{check.__name__}: not true after {timeout:g}s")
        await asyncio.sleep(0.05)


def pod(name: str, *, cpu: str | None = None, owner: str | None = None, **spec: Any) -> Pod:
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}}
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                    "uid": f"uid-{owner}", "controller": True}]
    return Pod.from_dict({"metadata": meta, "spec": {"containers": [container], **spec}})


@contextlib.asynccontextmanager
async def running(client: Client) -> AsyncIterator[tuple[Scheduler, Events]]:
    async with EventRecorder(client, component="default-scheduler") as recorder:
        events = Events(recorder)
        scheduler = Scheduler(client, recorder=events, initial_backoff=0.1, max_backoff=0.5)
        stop = asyncio.Event()
        task = asyncio.create_task(scheduler.run(stop))
        try:
            yield scheduler, events
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await recorder.flush(5)


@pytest.fixture
async def hollow(client: Client) -> AsyncIterator[HollowCluster]:
    with contextlib.suppress(AlreadyExists):
        await client.create(Namespace(metadata=ObjectMeta(name="default")))
    async with HollowCluster(client, lease_renew=0.5) as hc:
        yield hc


async def bound_nodes(client: Client) -> dict[str, str | None]:
    pods = await client.list(Pod, namespace="default")
    return {p.metadata.name or "": p.spec.node_name for p in pods.items}


async def test_replicas_spread_over_nodes(client: Client, hollow: HollowCluster) -> None:
    for i in range(5):
        await hollow.add_node(f"node-{i}")
    async with running(client) as (_, events):
        for i in range(20):
            await client.create(pod(f"web-{i}", owner="web", cpu="100m"))

        async def all_bound() -> bool:
            return all((await bound_nodes(client)).values())

        await eventually(all_bound)
    placement = Counter((await bound_nodes(client)).values())
    assert placement == {f"node-{i}": 4 for i in range(5)}
    assert Counter(r for _, _, r, _ in events.seen) == {"Scheduled": 20}
    where = (await bound_nodes(client))["web-0"]
    assert ("web-0", "Normal", "Scheduled", f"Successfully assigned default/web-0 to {where}") in events.seen


async def test_pod_that_fits_nowhere_says_why_then_lands_on_a_new_node(client: Client, hollow: HollowCluster) -> None:
    await hollow.add_node("small-a", cpu="1", labels={"disk": "ssd"})
    await hollow.add_node("small-b", cpu="1", labels={"disk": "ssd"})
    await hollow.add_node("big-hdd", cpu="8", labels={"disk": "hdd"})
    expected = ("0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                "2 Insufficient cpu.")
    async with running(client) as (scheduler, events):
        await client.create(pod("db", cpu="2", nodeSelector={"disk": "ssd"}))

        async def says_why() -> bool:
            current = await client.get(Pod, "db", namespace="default")
            cond = current.status.condition("PodScheduled") if current.status else None
            return cond is not None and cond.reason == "Unschedulable"

        await eventually(says_why)
        current = await client.get(Pod, "db", namespace="default")
        assert current.status is not None
        cond = current.status.condition("PodScheduled")
        assert cond is not None and (cond.status, cond.message) == ("False", expected)
        assert ("db", "Warning", "FailedScheduling", expected) in events.seen
        assert current.spec.node_name is None

        # A node where it fits joins the cluster: the pod is tried again and lands there.
        await hollow.add_node("big-ssd", cpu="4", labels={"disk": "ssd"})

        async def scheduled() -> bool:
            return (await bound_nodes(client))["db"] == "big-ssd"

        await eventually(scheduled)
        assert scheduler.cache.assumed_count() == 0 or scheduler.cache.node_of("default/db") == "big-ssd"
    assert events.reasons("db")[-1] == "Scheduled"
    recorded = await api_events(client, "db")
    assert ("Warning", "FailedScheduling", expected) in recorded
    assert ("Normal", "Scheduled", "Successfully assigned default/db to big-ssd") in recorded
    final = await client.get(Pod, "db", namespace="default")
    assert final.status is not None
    scheduled_cond = final.status.condition("PodScheduled")
    assert scheduled_cond is not None and scheduled_cond.status == "True"


async def test_cordoned_node_takes_no_pods_until_uncordoned(client: Client, hollow: HollowCluster) -> None:
    await hollow.add_node("n1")
    await client.patch(Node, "n1", {"spec": {"unschedulable": True}})  # kubelite cordon n1
    async with running(client) as (_, events):
        await client.create(pod("web"))

        async def cordon_reported() -> bool:
            return ("web", "Warning", "FailedScheduling",
                    "0/1 nodes are available: 1 node(s) were unschedulable.") in events.seen

        await eventually(cordon_reported)
        assert (await bound_nodes(client))["web"] is None
        await client.patch(Node, "n1", {"spec": {"unschedulable": False}})  # uncordon: a node event

        async def scheduled() -> bool:
            return (await bound_nodes(client))["web"] == "n1"

        await eventually(scheduled)


async def test_capacity_counts_bound_and_assumed_pods_and_frees_on_delete(client: Client,
                                                                          hollow: HollowCluster) -> None:
    await hollow.add_node("only", cpu="2")
    async with running(client) as (_, events):
        for i in range(3):
            await client.create(pod(f"p{i}", cpu="1"))

        async def two_bound() -> bool:
            nodes = await bound_nodes(client)
            return sum(1 for n in nodes.values() if n) == 2 and "FailedScheduling" in [
                r for _, _, r, _ in events.seen]

        await eventually(two_bound)
        nodes = await bound_nodes(client)
        waiting = next(name for name, n in nodes.items() if n is None)
        await client.delete(Pod, next(name for name, n in nodes.items() if n), namespace="default")

        async def third_bound() -> bool:
            return (await bound_nodes(client)).get(waiting) == "only"

        await eventually(third_bound)


@dataclass
class Sink:
    name: str
    scheduled: list[str] = field(default_factory=list)

    def event(self, obj: KubeModel, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        if reason == "Scheduled":
            self.scheduled.append(getattr(getattr(obj, "metadata", None), "name", ""))


async def test_two_schedulers_with_leader_election_take_turns(client: Client, hollow: HollowCluster) -> None:
    await hollow.add_node("n1")
    sinks = {name: Sink(name) for name in ("s1", "s2")}
    stops = {name: asyncio.Event() for name in sinks}
    tasks = {
        name: asyncio.create_task(run_scheduler(client, stop=stops[name], leader_elect=True, identity=name,
                                                recorder=sinks[name], lease_duration=1.5, renew_deadline=1.0,
                                                retry_period=0.2))
        for name in sinks
    }
    try:
        for i in range(10):
            await client.create(pod(f"a-{i}"))

        async def first_batch_bound() -> bool:
            return sum(len(s.scheduled) for s in sinks.values()) == 10

        await eventually(first_batch_bound)
        leader = next(name for name, s in sinks.items() if s.scheduled)
        standby = next(name for name in sinks if name != leader)
        assert sinks[standby].scheduled == []  # only the leader schedules

        stops[leader].set()  # the leader stops and releases the lease
        await asyncio.wait_for(tasks[leader], 10)
        for i in range(5):
            await client.create(pod(f"b-{i}"))

        async def standby_took_over() -> bool:
            return len(sinks[standby].scheduled) == 5

        await eventually(standby_took_over)
        assert sorted(sinks[standby].scheduled) == [f"b-{i}" for i in range(5)]
        assert all(await bound_nodes(client))
    finally:
        for name in sinks:
            stops[name].set()
        await asyncio.wait_for(asyncio.gather(*tasks.values(), return_exceptions=True), 15)
