"""LeaderElector against a real API server: one leader at a time, hand-over, expiry, loss."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from api import errors
from api.client import Client
from api.coordination import Lease
from api.leaderelection import LeaderElector
from tests.support.cluster import ApiServer

FAST = {"lease_duration": 1.0, "renew_deadline": 0.6, "retry_period": 0.1}


def elector(client: Client, identity: str, **kw: object) -> LeaderElector:
    return LeaderElector(client, name="test-lock", identity=identity, **{**FAST, **kw})  # type: ignore[arg-type]


class Work:
    """A leading coroutine that records when it starts and how it ends."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def __call__(self) -> None:
        self.started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def lease(client: Client) -> Lease:
    return await client.get(Lease, "test-lock", namespace="kube-system")


async def test_single_candidate_leads_and_releases_when_done(client: Client) -> None:
    e = elector(client, "a")
    ran: list[bool] = []

    async def work() -> None:
        ran.append(e.is_leader())
        held = await lease(client)
        assert held.spec is not None and held.spec.holder_identity == "a"
        assert held.spec.lease_duration_seconds == 1 and held.spec.lease_transitions == 0

    await asyncio.wait_for(e.run(work), 5)
    assert ran == [True] and not e.is_leader()
    released = await lease(client)
    assert released.spec is not None and not released.spec.holder_identity


async def test_one_leader_at_a_time_and_fast_handover_on_release(client: Client) -> None:
    a_work, b_work = Work(), Work()
    a = elector(client, "a")
    b = elector(client, "b")
    async with asyncio.TaskGroup() as tg:
        a_run = tg.create_task(a.run(a_work))
        await asyncio.wait_for(a_work.started.wait(), 5)
        b_run = tg.create_task(b.run(b_work))
        await asyncio.sleep(1.5)  # longer than the lease: a keeps renewing, b must not lead
        assert a.is_leader() and not b.is_leader() and not b_work.started.is_set()
        assert b.leader == "a"

        loop = asyncio.get_running_loop()
        a_run.cancel()  # a steps down and releases: b need not wait for expiry
        stepped_down = loop.time()
        await asyncio.wait_for(b_work.started.wait(), 5)
        assert loop.time() - stepped_down < 0.8
        assert a_work.cancelled and not a.is_leader() and b.is_leader()
        held = await lease(client)
        assert held.spec is not None and held.spec.holder_identity == "b"
        assert held.spec.lease_transitions == 1  # one change of holder: a -> b (a release is not one)
        b_run.cancel()


async def test_crashed_leader_is_replaced_after_the_lease_expires(client: Client) -> None:
    a = elector(client, "a", release_on_cancel=False)
    b = elector(client, "b")
    a_work, b_work = Work(), Work()
    async with asyncio.TaskGroup() as tg:
        a_run = tg.create_task(a.run(a_work))
        await asyncio.wait_for(a_work.started.wait(), 5)
        b_run = tg.create_task(b.run(b_work))
        await asyncio.sleep(0.3)
        loop = asyncio.get_running_loop()
        a_run.cancel()  # as if a's process died: nothing released
        crashed = loop.time()
        await asyncio.wait_for(b_work.started.wait(), 5)
        assert loop.time() - crashed >= 0.6, "b took over before the lease could have expired"
        held = await lease(client)
        assert held.spec is not None and held.spec.holder_identity == "b"
        assert held.spec.lease_transitions == 1
        b_run.cancel()


async def test_leader_whose_lease_is_taken_stops_its_work(client: Client) -> None:
    a = elector(client, "a")
    work = Work()
    run = asyncio.create_task(a.run(work))
    await asyncio.wait_for(work.started.wait(), 5)
    while True:  # a renews every 0.1 s: re-read and retry on conflict, never force
        stolen = await lease(client)
        assert stolen.spec is not None
        stolen.spec.holder_identity = "intruder"
        stolen.spec.lease_duration_seconds = 3600
        stolen.spec.renew_time = datetime.now(UTC)
        try:
            await client.update(stolen)
            break
        except errors.Conflict:
            continue
    await asyncio.wait_for(run, 2)  # returns (no exception) once leadership is lost
    assert work.cancelled and not a.is_leader()
    assert (await lease(client)).spec.holder_identity == "intruder"  # type: ignore[union-attr]


async def test_leader_that_cannot_renew_gives_up_within_the_deadline(client: Client,
                                                                       apiserver: ApiServer) -> None:
    a = elector(client, "a")
    work = Work()
    run = asyncio.create_task(a.run(work))
    await asyncio.wait_for(work.started.wait(), 5)
    loop = asyncio.get_running_loop()
    await apiserver.stop()
    down = loop.time()
    try:
        await asyncio.wait_for(run, 3)
        assert loop.time() - down < 1.0, "the leader must stop before its lease can expire for others"
        assert work.cancelled and not a.is_leader()
    finally:
        await apiserver.start()


async def test_failing_work_is_raised_and_the_lease_released(client: Client) -> None:
    a = elector(client, "a")

    async def work() -> None:
        raise RuntimeError("leader crashed")

    with pytest.raises(RuntimeError, match="leader crashed"):
        await asyncio.wait_for(a.run(work), 5)
    assert not (await lease(client)).spec.holder_identity  # type: ignore[union-attr]


def test_timing_must_be_ordered() -> None:
    with pytest.raises(ValueError):
        LeaderElector(object(), name="x", identity="a", lease_duration=5, renew_deadline=5)  # type: ignore[arg-type]
