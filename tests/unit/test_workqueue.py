"""WorkQueue and run_workers: client-go semantics on asyncio, with small real delays."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.errors import Conflict
from api.worker import run_workers
from api.workqueue import QueueShutDown, WorkQueue


async def test_key_added_twice_while_waiting_is_processed_once() -> None:
    q = WorkQueue()
    q.add("a")
    q.add("b")
    q.add("a")
    assert len(q) == 2
    assert await q.get() == "a"
    assert await q.get() == "b"
    assert len(q) == 0


async def test_key_readded_while_processing_comes_back_after_done() -> None:
    q = WorkQueue()
    q.add("a")
    key = await q.get()
    q.add("a")
    q.add("a")
    assert len(q) == 0, "a processing key must not be handed out again"
    q.done(key)
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0


async def test_done_without_readd_does_not_requeue() -> None:
    q = WorkQueue()
    q.add("a")
    q.done(await q.get())
    assert len(q) == 0


async def test_get_waits_for_add_and_fifo_order() -> None:
    q = WorkQueue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    for k in ("x", "y", "z"):
        q.add(k)
    assert await getter == "x"
    assert [await q.get(), await q.get()] == ["y", "z"]


async def test_cancelled_waiter_passes_its_wakeup_on() -> None:
    q = WorkQueue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("k")  # wakes `first` ...
    first.cancel()  # ... which is cancelled before it runs: `second` must get the key
    assert await asyncio.wait_for(second, 1) == "k"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_add_after_and_earliest_schedule_wins() -> None:
    q = WorkQueue()
    q.add_after("a", 0.2)
    q.add_after("a", 0.02)  # earlier: replaces
    q.add_after("a", 0.5)  # later: ignored
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await asyncio.wait_for(q.get(), 1) == "a"
    assert 0.015 <= loop.time() - start < 0.15
    q.done("a")
    await asyncio.sleep(0.25)
    assert len(q) == 0, "the replaced and the later schedule must not fire"


async def test_add_after_non_positive_is_immediate() -> None:
    q = WorkQueue()
    q.add_after("a", 0)
    assert len(q) == 1


async def test_rate_limited_backoff_grows_exponentially_and_forget_resets() -> None:
    q = WorkQueue(base_delay=0.005, max_delay=0.04)
    assert [q.backoff("k") for _ in range(1)] == [0.005]
    delays = []
    for _ in range(5):
        delays.append(q.backoff("k"))
        q.add_rate_limited("k")
        q.done(await asyncio.wait_for(q.get(), 1))
    assert delays == [0.005, 0.01, 0.02, 0.04, 0.04]
    assert q.num_requeues("k") == 5
    assert q.num_requeues("other") == 0
    q.forget("k")
    assert q.num_requeues("k") == 0
    assert q.backoff("k") == 0.005


async def test_backoff_defaults_match_client_go_and_cap() -> None:
    q = WorkQueue()
    assert q.backoff("k") == 0.005
    for _ in range(200):  # no float overflow however many failures
        q.add_rate_limited("k")
    assert q.backoff("k") == 1000.0
    q.shut_down()


async def test_shutdown_wakes_waiters_and_refuses_adds() -> None:
    q = WorkQueue()
    waiters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.add_after("later", 0.01)
    q.shut_down()
    for w in waiters:
        with pytest.raises(QueueShutDown):
            await w
    q.add("a")
    assert len(q) == 0
    with pytest.raises(QueueShutDown):
        await q.get()
    await asyncio.sleep(0.03)
    assert len(q) == 0, "a timer pending at shutdown must not fire"
    assert q.shutting_down


async def test_shutdown_stops_handing_out_queued_keys() -> None:
    q = WorkQueue()
    q.add("a")
    q.shut_down()
    with pytest.raises(QueueShutDown):
        await q.get()


# --------------------------------------------------------------------------- workers


async def test_workers_never_sync_one_key_concurrently_and_see_latest_adds() -> None:
    q = WorkQueue()
    running: set[str] = set()
    syncs: dict[str, int] = {}
    overlap = False

    async def sync(key: str) -> None:
        nonlocal overlap
        if key in running:
            overlap = True
        running.add(key)
        syncs[key] = syncs.get(key, 0) + 1
        await asyncio.sleep(0.01)
        running.discard(key)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(run_workers(q, sync, workers=4, name="test"))
        for _ in range(3):
            for k in ("a", "b", "c"):
                q.add(k)
            await asyncio.sleep(0.003)  # adds land while the keys are processing
        await asyncio.sleep(0.05)
        q.shut_down()
    assert not overlap
    # each key: one sync for the first add, one more for the adds made while it was syncing
    assert syncs == {"a": 2, "b": 2, "c": 2}


async def test_workers_run_in_parallel_across_keys() -> None:
    q = WorkQueue()
    active = 0
    peak = 0

    async def sync(key: str) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.02)
        active -= 1

    for k in "abcd":
        q.add(k)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(run_workers(q, sync, workers=3, name="test"))
        await asyncio.sleep(0.06)
        q.shut_down()
    assert peak == 3


async def test_worker_requeues_failures_with_backoff_and_forgets_on_success(
    caplog: pytest.LogCaptureFixture,
) -> None:
    q = WorkQueue(base_delay=0.002)
    attempts: list[float] = []
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    async def sync(key: str) -> None:
        attempts.append(loop.time())
        if len(attempts) < 4:
            raise Conflict("the object has been modified") if len(attempts) % 2 else RuntimeError("bug")
        done.set()

    q.add("k")
    with caplog.at_level(logging.WARNING, logger="api.worker"):
        async with asyncio.TaskGroup() as tg:
            tg.create_task(run_workers(q, sync, name="retry"))
            await asyncio.wait_for(done.wait(), 2)
            q.shut_down()
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.0018 and gaps[1] >= 0.0038 and gaps[2] >= 0.0078
    assert q.num_requeues("k") == 0, "success must forget the key's failures"
    messages = [r.getMessage() for r in caplog.records]
    assert sum("sync 'k' failed" in m for m in messages) == 3
    # API errors are logged without a traceback, other exceptions with one
    tracebacks = [r.exc_info is not None for r in caplog.records]
    assert tracebacks == [False, True, False]


async def test_worker_drops_key_after_max_retries(caplog: pytest.LogCaptureFixture) -> None:
    q = WorkQueue(base_delay=0.001)
    calls = 0

    async def sync(key: str) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("always")

    q.add("k")
    with caplog.at_level(logging.ERROR, logger="api.worker"):
        async with asyncio.TaskGroup() as tg:
            tg.create_task(run_workers(q, sync, name="drop", max_retries=2))
            await asyncio.sleep(0.05)
            q.shut_down()
    assert calls == 3
    assert q.num_requeues("k") == 0
    assert any("dropping 'k' after 2 retries" in r.getMessage() for r in caplog.records)


async def test_cancelling_workers_marks_key_done() -> None:
    q = WorkQueue()
    started = asyncio.Event()

    async def sync(key: str) -> None:
        started.set()
        await asyncio.sleep(10)

    q.add("k")
    task = asyncio.create_task(run_workers(q, sync, workers=2, name="cancel"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    q.add("k")
    assert await asyncio.wait_for(q.get(), 1) == "k", "a cancelled sync must release its key"


async def test_run_workers_rejects_zero_workers() -> None:
    async def sync(key: str) -> None:
        pass

    with pytest.raises(ValueError):
        await run_workers(WorkQueue(), sync, workers=0, name="x")


# ------------------------------------------------------------------ property test

_KEYS = st.sampled_from(["a", "b", "c", "d"])
_OPS = st.lists(st.one_of(st.tuples(st.just("add"), _KEYS), st.tuples(st.just("get"), st.just("")),
                          st.tuples(st.just("done"), _KEYS)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(_OPS)
def test_queue_matches_the_client_go_model(ops: list[tuple[str, str]]) -> None:
    """Against a plain model of the spec: FIFO of distinct waiting keys; a processing key that
    is added again waits in `dirty` until done(); get never returns a processing key."""

    async def scenario() -> None:
        q = WorkQueue()
        waiting: list[str] = []
        processing: set[str] = set()
        dirty: set[str] = set()
        for op, key in ops:
            if op == "add":
                q.add(key)
                if key not in dirty:
                    dirty.add(key)
                    if key not in processing:
                        waiting.append(key)
            elif op == "get":
                if not waiting:
                    continue  # get() would wait
                got = await q.get()
                expected = waiting.pop(0)
                assert got == expected and got not in processing
                processing.add(got)
                dirty.discard(got)
            elif key in processing:
                q.done(key)
                processing.discard(key)
                if key in dirty:
                    waiting.append(key)
            assert len(q) == len(waiting)

    asyncio.run(scenario())
