"""One scheduling cycle and its binding outcomes, with a fake client (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from api.core import Pod
from api.errors import Conflict, InternalError, NotFound
from scheduler.queue import Location
from scheduler.scheduler import Scheduler, node_changed_for_scheduling, unschedulable_status
from tests.unit.test_scheduler_builders import make_node, make_pod

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class FakeClient:
    def __init__(self, bind_error: Exception | None = None) -> None:
        self.bind_error = bind_error
        self.bound: list[tuple[str, str]] = []
        self.statuses: list[Pod] = []

    async def bind(self, pod: Pod, node_name: str) -> None:
        if self.bind_error is not None:
            raise self.bind_error
        self.bound.append((pod.metadata.name or "", node_name))

    async def update_status(self, pod: Pod) -> Pod:
        self.statuses.append(pod)
        return pod


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        self.seen.append((type_, reason, message))


def new_scheduler(client: FakeClient) -> tuple[Scheduler, Events]:
    events = Events()
    fake: Any = client
    sched = Scheduler(fake, recorder=events, clock=lambda: 100.0)
    sched.cache.add_node(make_node("a", cpu="1"))
    return sched, events


async def test_success_binds_and_keeps_the_assumption_until_confirmed() -> None:
    client = FakeClient()
    sched, events = new_scheduler(client)
    sched.queue.add(make_pod("p", cpu="1"))
    qp = sched.queue.pop_nowait()
    assert qp is not None
    binding = sched.schedule_one(qp)
    await sched._bind_slots.acquire()
    await binding
    assert client.bound == [("p", "a")]
    assert sched.cache.is_assumed("default/p") and len(sched.queue) == 0
    assert events.seen == [("Normal", "Scheduled", "Successfully assigned default/p to a")]
    sched._pod_updated(make_pod("p", cpu="1"), make_pod("p", cpu="1", node_name="a"))  # the watch confirms it
    assert not sched.cache.is_assumed("default/p") and sched.cache.node_of("default/p") == "a"


@pytest.mark.parametrize(
    ("error", "location"),
    [
        (NotFound("gone"), None),
        (Conflict("already assigned"), Location.BACKOFF),
        (InternalError("etcd down"), Location.BACKOFF),
    ],
)
async def test_failed_binding_forgets_the_assumption(error: Exception, location: Location | None) -> None:
    sched, events = new_scheduler(FakeClient(bind_error=error))
    sched.queue.add(make_pod("p", cpu="1"))
    qp = sched.queue.pop_nowait()
    assert qp is not None
    binding = sched.schedule_one(qp)
    assert sched.cache.is_assumed("default/p")
    await sched._bind_slots.acquire()
    await binding
    assert sched.cache.node_of("default/p") is None  # capacity is free again
    assert sched.queue.location("default/p") is location
    assert events.seen == []


async def test_unschedulable_pod_gets_condition_and_event_once() -> None:
    client = FakeClient()
    sched, events = new_scheduler(client)
    sched.queue.add(make_pod("p", cpu="2"))
    qp = sched.queue.pop_nowait()
    assert qp is not None
    assert sched.schedule_one(qp) is None
    await sched._report_unschedulable(qp.pod, "0/1 nodes are available: 1 Insufficient cpu.")
    assert sched.queue.location("default/p") is Location.UNSCHEDULABLE
    assert events.seen == [("Warning", "FailedScheduling", "0/1 nodes are available: 1 Insufficient cpu.")]
    assert len(client.statuses) == 1
    written = client.statuses[0]
    assert written.status is not None
    cond = written.status.condition("PodScheduled")
    assert cond is not None and (cond.status, cond.reason) == ("False", "Unschedulable")
    # The same verdict again: an event, but no second identical status write.
    await sched._report_unschedulable(written, "0/1 nodes are available: 1 Insufficient cpu.")
    assert len(client.statuses) == 1


def test_already_bound_or_deleting_pods_are_skipped() -> None:
    sched, _ = new_scheduler(FakeClient())
    sched.queue.add(make_pod("p"))
    qp = sched.queue.pop_nowait()
    assert qp is not None
    qp.pod = make_pod("p", node_name="a")
    assert sched.schedule_one(qp) is None
    assert len(sched.queue) == 0


def test_unschedulable_status_keeps_other_conditions_and_transition_time() -> None:
    pod = Pod.from_dict({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]},
                         "status": {"phase": "Pending", "conditions": [{"type": "Custom", "status": "True"}]}})
    first = unschedulable_status(pod, "m1", NOW)
    assert first is not None and [c.type for c in first.conditions or []] == ["Custom", "PodScheduled"]
    again = pod.model_copy(update={"status": first})
    assert unschedulable_status(again, "m1", NOW) is None
    later = datetime(2026, 1, 2, tzinfo=UTC)
    changed = unschedulable_status(again, "m2", later)
    assert changed is not None
    cond = changed.condition("PodScheduled")
    assert cond is not None and cond.message == "m2" and cond.last_transition_time == NOW


def test_heartbeats_do_not_count_as_node_changes() -> None:
    old = make_node("a")
    beat = old.model_copy(deep=True)
    assert beat.status is not None and beat.status.conditions
    beat.status.conditions[0].last_heartbeat_time = NOW
    assert not node_changed_for_scheduling(old, beat)
    assert node_changed_for_scheduling(old, make_node("a", unschedulable=True))
    assert node_changed_for_scheduling(old, make_node("a", ready="False"))
    assert node_changed_for_scheduling(old, make_node("a", labels={"x": "y"}))
    assert node_changed_for_scheduling(old, make_node("a", cpu="8"))
