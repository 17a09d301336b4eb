"""Node lifecycle and garbage collector cores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.core import Container, Node, NodeCondition, NodeSpec, NodeStatus, Pod, PodSpec, Taint, Toleration
from api.meta import ObjectMeta, OwnerReference
from controllers import gc_core
from controllers.nodelifecycle_core import NOT_READY, UNREACHABLE, decide

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def node(ready: str = "True", taints: list[Taint] | None = None) -> Node:
    return Node(metadata=ObjectMeta(name="n1"), spec=NodeSpec(taints=taints),
                status=NodeStatus(conditions=[NodeCondition(type="Ready", status=ready)]))


def pod(name: str, tolerations: list[Toleration] | None = None) -> Pod:
    return Pod(metadata=ObjectMeta(name=name, namespace="default"),
               spec=PodSpec(containers=[Container(name="c")], node_name="n1", tolerations=tolerations))


def test_healthy_node_is_left_alone() -> None:
    d = decide(node(), [pod("a")], last_heartbeat=T0, now=T0 + timedelta(seconds=10), grace=40,
               eviction_timeout=300)
    assert d.conditions is None and d.taints is None and not d.evict
    assert d.requeue_after == 30


def test_stale_node_goes_unknown_tainted_then_evicts() -> None:
    now = T0 + timedelta(seconds=41)
    d = decide(node(), [pod("a")], last_heartbeat=T0, now=now, grace=40, eviction_timeout=300)
    assert d.became_unreachable
    assert d.conditions is not None and d.conditions[0].status == "Unknown"
    assert d.taints is not None and {(t.key, t.effect) for t in d.taints} == {
        (UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    assert not d.evict and d.requeue_after == 300
    assert d.mark_not_ready == []  # the test pod has no Ready condition
    tainted = node("Unknown", d.taints)
    forever = Toleration(key=UNREACHABLE, operator="Exists", effect="NoExecute")
    short = Toleration(key=UNREACHABLE, operator="Exists", effect="NoExecute", toleration_seconds=10)
    pods = [pod("a"), pod("forever", [forever]), pod("short", [short])]
    d2 = decide(tainted, pods, last_heartbeat=T0, now=now + timedelta(seconds=11), grace=40,
                eviction_timeout=300)
    assert [p.metadata.name for p in d2.evict] == ["short"] and d2.conditions is None and d2.taints is None
    d3 = decide(tainted, pods, last_heartbeat=T0, now=now + timedelta(seconds=301), grace=40,
                eviction_timeout=300)
    assert [p.metadata.name for p in d3.evict] == ["a", "short"]


def test_node_that_comes_back_is_untainted() -> None:
    taints = [Taint(key=UNREACHABLE, effect="NoExecute", time_added=T0),
              Taint(key="mine", effect="NoSchedule")]
    d = decide(node("True", taints), [], last_heartbeat=T0, now=T0, grace=40, eviction_timeout=300)
    assert d.taints is not None and [t.key for t in d.taints] == ["mine"]


def test_not_ready_node_gets_not_ready_taint() -> None:
    d = decide(node("False"), [], last_heartbeat=T0, now=T0, grace=40, eviction_timeout=300)
    assert d.taints is not None and {t.key for t in d.taints} == {NOT_READY}


def _meta(*owners: str, deleting: bool = False, finalizers: list[str] | None = None) -> ObjectMeta:
    return ObjectMeta(name="x", deletion_timestamp=T0 if deleting else None, finalizers=finalizers,
                      owner_references=[OwnerReference(api_version="v1", kind="K", name=o, uid=o)
                                        for o in owners] or None)


def test_gc_dependent_decisions() -> None:
    P, A, D = gc_core.Owner.PRESENT, gc_core.Owner.ABSENT, gc_core.Owner.DELETING
    assert gc_core.decide_dependent(_meta("a"), {"a": P}) == gc_core.DependentAction()
    assert gc_core.decide_dependent(_meta("a"), {}).delete
    assert gc_core.decide_dependent(_meta("a", "b"), {"a": A, "b": P}).remove_refs == ["a"]
    assert gc_core.decide_dependent(_meta("a"), {"a": D}) == gc_core.DependentAction()
    assert gc_core.decide_dependent(_meta("a", deleting=True), {}) == gc_core.DependentAction()


def test_gc_owner_decisions() -> None:
    fg = _meta(deleting=True, finalizers=[gc_core.FOREGROUND])
    assert gc_core.decide_owner(fg, dependents=2).delete_dependents
    assert gc_core.decide_owner(fg, dependents=0).drop_finalizer == gc_core.FOREGROUND
    orphan = _meta(deleting=True, finalizers=[gc_core.ORPHAN])
    assert gc_core.decide_owner(orphan, dependents=1).orphan
    assert gc_core.decide_owner(orphan, dependents=0).drop_finalizer == gc_core.ORPHAN
    assert gc_core.decide_owner(_meta(), dependents=3) == gc_core.OwnerAction()


def test_ready_pods_on_a_silent_node_are_marked_not_ready() -> None:
    from api.core import PodCondition, PodStatus

    ready = pod("r")
    ready.status = PodStatus(phase="Running", conditions=[PodCondition(type="Ready", status="True")])
    d = decide(node(), [ready, pod("x")], last_heartbeat=T0, now=T0 + timedelta(seconds=41), grace=40,
               eviction_timeout=300)
    assert [p.metadata.name for p in d.mark_not_ready] == ["r"]
    fresh = decide(node(), [ready], last_heartbeat=T0, now=T0 + timedelta(seconds=5), grace=40,
                   eviction_timeout=300)
    assert fresh.mark_not_ready == []


def test_node_without_status_yet_is_not_tainted_before_grace() -> None:
    fresh = Node(metadata=ObjectMeta(name="n1"))
    d = decide(fresh, [], last_heartbeat=T0, now=T0 + timedelta(seconds=1), grace=40, eviction_timeout=300)
    assert d.taints is None and d.conditions is None
    late = decide(fresh, [], last_heartbeat=T0, now=T0 + timedelta(seconds=41), grace=40, eviction_timeout=300)
    assert late.taints is not None and late.conditions is not None
