"""The scheduling queue's transitions, with a fake clock."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.queue import Location, QueueClosed, QueuedPod, SchedulingQueue
from tests.unit.test_scheduler_builders import make_pod


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def new_queue(clock: Clock) -> SchedulingQueue:
    return SchedulingQueue(initial_backoff=1, max_backoff=8, unschedulable_timeout=60, clock=clock)


def test_priority_then_fifo() -> None:
    clock = Clock()
    q = new_queue(clock)
    for name, prio in (("a", 0), ("b", 10), ("c", 0), ("d", 10)):
        q.add(make_pod(name, priority=prio))
        clock.now += 0.001
    order = []
    while (qp := q.pop_nowait()) is not None:
        order.append(qp.pod.metadata.name)
    assert order == ["b", "d", "a", "c"]


def test_adding_twice_keeps_one_entry_with_the_latest_pod() -> None:
    q = new_queue(Clock())
    q.add(make_pod("a", cpu="1"))
    q.add(make_pod("a", cpu="2"))
    assert len(q) == 1
    qp = q.pop_nowait()
    assert qp is not None and qp.pod.spec.containers[0].resources is not None
    assert qp.pod.spec.containers[0].resources.requests == {"cpu": "2"}
    assert q.pop_nowait() is None


def test_unschedulable_waits_for_a_cluster_event_then_backs_off() -> None:
    clock = Clock()
    q = new_queue(clock)
    q.add(make_pod("a"))
    qp = q.pop_nowait()
    assert qp is not None
    q.requeue_unschedulable(qp)
    assert q.location("default/a") is Location.UNSCHEDULABLE
    clock.now += 30
    assert q.pop_nowait() is None  # nothing changed: stays parked
    q.move_all()
    assert q.pop_nowait() is qp  # its 1 s backoff elapsed long ago
    q.requeue_unschedulable(qp)
    q.move_all()  # event right away: the 2 s backoff still applies
    assert q.location("default/a") is Location.BACKOFF
    assert q.pop_nowait() is None
    clock.now += 2
    assert q.pop_nowait() is qp


def test_event_during_the_attempt_is_not_missed() -> None:
    clock = Clock()
    q = new_queue(clock)
    q.add(make_pod("a"))
    qp = q.pop_nowait()
    assert qp is not None
    q.move_all()  # e.g. a node was added while we were filtering
    q.requeue_unschedulable(qp)
    assert q.location("default/a") is Location.BACKOFF
    clock.now += 1
    assert q.pop_nowait() is qp


def test_unschedulable_timeout_and_pod_update() -> None:
    clock = Clock()
    q = new_queue(clock)
    q.add(make_pod("a"))
    q.add(make_pod("b"))
    qa, qb = q.pop_nowait(), q.pop_nowait()
    assert qa is not None and qb is not None
    q.requeue_unschedulable(qa)
    q.requeue_unschedulable(qb)
    clock.now += 5
    q.add(make_pod("b", cpu="1"))  # the user changed the pod: try it again
    assert q.pop_nowait() is qb
    assert q.pop_nowait() is None
    clock.now += 60
    assert q.pop_nowait() is qa


def test_backoff_grows_and_caps() -> None:
    q = new_queue(Clock())
    assert [q.backoff_for(n) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]


def test_delete_and_done() -> None:
    q = new_queue(Clock())
    q.add(make_pod("a"))
    q.add(make_pod("b"))
    q.delete("default/a")
    qp = q.pop_nowait()
    assert qp is not None and qp.key == "default/b"
    q.delete("default/b")
    q.requeue_backoff(qp)  # deleted while in flight: not resurrected
    assert len(q) == 0
    q.add(make_pod("c"))
    qc = q.pop_nowait()
    assert qc is not None
    q.done(qc.key)
    assert len(q) == 0


async def test_pop_waits_for_work_and_close_wakes_it() -> None:
    q = SchedulingQueue(initial_backoff=0.05, max_backoff=0.05)
    waiter = asyncio.create_task(q.pop())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    q.add(make_pod("a"))
    qp = await asyncio.wait_for(waiter, 1)
    q.requeue_backoff(qp)
    again = await asyncio.wait_for(q.pop(), 1)  # woken by the backoff timer, not by an add
    assert again is qp
    waiter = asyncio.create_task(q.pop())
    await asyncio.sleep(0.01)
    q.close()
    with pytest.raises(QueueClosed):
        await asyncio.wait_for(waiter, 1)


ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "delete", "pop", "done", "unsched", "backoff", "move", "tick"]),
        st.integers(0, 5),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_every_pending_pod_is_in_exactly_one_place_and_eventually_tried(steps: list[tuple[str, int]]) -> None:
    clock = Clock()
    q = new_queue(clock)
    live: set[str] = set()
    in_flight: dict[str, QueuedPod] = {}
    for op, i in steps:
        key = f"default/p{i}"
        if op == "add":
            q.add(make_pod(f"p{i}"))
            live.add(key)
        elif op == "delete":
            q.delete(key)
            live.discard(key)
            in_flight.pop(key, None)
        elif op == "pop":
            qp = q.pop_nowait()
            if qp is not None:
                assert qp.key not in in_flight  # never handed out twice at once
                in_flight[qp.key] = qp
        elif op in ("done", "unsched", "backoff") and in_flight:
            k, flying = next(iter(in_flight.items()))
            del in_flight[k]
            if op == "done":
                q.done(k)
                live.discard(k)
            elif op == "unsched":
                q.requeue_unschedulable(flying)
            else:
                q.requeue_backoff(flying)
        elif op == "move":
            q.move_all()
        elif op == "tick":
            clock.now += i
        assert len(q) == len(live)
        assert {k for k in live if q.location(k) is Location.IN_FLIGHT} == set(in_flight)
    # Liveness: after a cluster event and enough time, every waiting pod is tried.
    q.move_all()
    clock.now += 1000
    popped = set()
    while (qp := q.pop_nowait()) is not None:
        popped.add(qp.key)
    assert popped == live - set(in_flight)
