"""ReplicaSet decision core: deletion ranking, plans, slow start, expectations, status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from api.apps import ReplicaSet, ReplicaSetSpec
from api.core import Container, ContainerStatus, Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec
from api.meta import LabelSelector, ObjectMeta, OwnerReference
from api.selectors import label_selector_from_dict
from controllers import replicaset_core as rc

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def pod(name: str, *, node: str | None = "n1", phase: str = "Running", ready: bool = True,
        ready_at: datetime = T0, created: datetime = T0, restarts: int = 0, deleting: bool = False,
        labels: dict[str, str] | None = None, owner: str | None = "rs-uid") -> Pod:
    return Pod(
        metadata=ObjectMeta(
            name=name, namespace="default", uid=f"uid-{name}", creation_timestamp=created,
            deletion_timestamp=T0 if deleting else None, labels=labels or {"app": "web"},
            owner_references=[OwnerReference(api_version="apps/v1", kind="ReplicaSet", name="rs",
                                             uid=owner, controller=True)] if owner else None),
        spec=PodSpec(containers=[Container(name="c", image="i")], node_name=node),
        status=PodStatus(phase=phase,
                         conditions=[PodCondition(type="Ready", status="True" if ready else "False",
                                                  last_transition_time=ready_at)],
                         container_statuses=[ContainerStatus(name="c", restart_count=restarts)]),
    )


def test_deletion_ranking_prefers_least_valuable() -> None:
    pods = [
        pod("old-ready", created=T0),
        pod("unscheduled", node=None, phase="Pending", ready=False),
        pod("pending", phase="Pending", ready=False),
        pod("not-ready", ready=False),
        pod("restarty", restarts=5),
        pod("newer-ready", created=T0 + timedelta(seconds=5)),
        pod("recently-ready", ready_at=T0 + timedelta(seconds=30)),
        pod("gone", deleting=True),
    ]
    order = [p.metadata.name for p in rc.pods_to_delete(pods, 10)]
    assert order == ["unscheduled", "pending", "not-ready", "recently-ready", "restarty", "newer-ready",
                     "old-ready"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from(["Pending", "Running", "Unknown"]), st.booleans(),
                          st.integers(0, 100)), min_size=1, max_size=12), st.integers(0, 12))
def test_ranking_never_deletes_ready_before_not_ready_on_same_node_state(
        spec: list[tuple[bool, str, bool, int]], count: int) -> None:
    pods = [pod(f"p{i}", node="n" if sched else None, phase=phase, ready=ready,
                created=T0 + timedelta(seconds=age)) for i, (sched, phase, ready, age) in enumerate(spec)]
    chosen = rc.pods_to_delete(pods, count)
    assert len(chosen) == min(count, len(pods))
    rest = [p for p in pods if p not in chosen]
    for c in chosen:
        for r in rest:
            assert rc.deletion_rank(c) <= rc.deletion_rank(r)


def test_plan_counts_terminating_pods_as_gone() -> None:
    pods = [pod("a"), pod("b", deleting=True)]
    assert rc.plan(2, pods, expectations_satisfied=True).create == 1
    assert rc.plan(1, pods, expectations_satisfied=True) == rc.ReplicaPlan()
    out = rc.plan(0, pods, expectations_satisfied=True)
    assert [p.metadata.name for p in out.delete] == ["a"]
    assert rc.plan(5, pods, expectations_satisfied=False) == rc.ReplicaPlan()


def test_slow_start_batches() -> None:
    assert rc.slow_start_batches(0) == []
    assert rc.slow_start_batches(1) == [1]
    assert rc.slow_start_batches(10) == [1, 2, 4, 3]
    assert sum(rc.slow_start_batches(500)) == 500


def test_expectations_block_until_observed_or_expired() -> None:
    e = rc.Expectations(ttl=10)
    assert e.satisfied("k", 0)
    e.expect_creations("k", 2, now=0)
    assert not e.satisfied("k", 1)
    e.creation_observed("k")
    assert not e.satisfied("k", 1)
    e.creation_observed("k")
    assert e.satisfied("k", 1)
    e.expect_deletions("k", ["u1"], now=2)
    assert not e.satisfied("k", 3)
    assert e.satisfied("k", 13)  # lost watch event: give up waiting
    e.deletion_observed("k", "u1")
    assert e.satisfied("k", 3)


def test_status_counts_ready_available_with_min_ready_seconds() -> None:
    rs = ReplicaSet(metadata=ObjectMeta(name="rs", generation=3),
                    spec=ReplicaSetSpec(replicas=3, min_ready_seconds=10,
                                        selector=LabelSelector(match_labels={"app": "web"}),
                                        template=PodTemplateSpec(metadata=ObjectMeta(labels={"app": "web"}),
                                                                 spec=PodSpec(containers=[]))))
    pods = [pod("a", ready_at=T0), pod("b", ready_at=T0 + timedelta(seconds=8)), pod("c", ready=False),
            pod("d", deleting=True)]
    status, wait = rc.compute_status(rs, pods, now=T0 + timedelta(seconds=12))
    assert (status.replicas, status.ready_replicas, status.available_replicas) == (3, 2, 1)
    assert status.terminating_replicas == 1 and status.observed_generation == 3
    assert wait == 6.0


def test_claim_adopts_orphans_and_releases_mismatches() -> None:
    sel = label_selector_from_dict({"matchLabels": {"app": "web"}})
    pods = [pod("mine"), pod("orphan", owner=None), pod("other", owner="x"),
            pod("moved", labels={"app": "db"}), pod("orphan-deleting", owner=None, deleting=True)]
    owned, adopt, release = rc.claim(pods, owner_uid="rs-uid", selector=sel)
    assert [p.metadata.name for p in owned] == ["mine"]
    assert [p.metadata.name for p in adopt] == ["orphan"]
    assert [p.metadata.name for p in release] == ["moved"]


def test_replica_failure_condition_set_and_cleared() -> None:
    rs = ReplicaSet(metadata=ObjectMeta(name="rs", generation=1),
                    spec=ReplicaSetSpec(replicas=2, selector=LabelSelector(match_labels={"app": "web"}),
                                        template=PodTemplateSpec(spec=PodSpec(containers=[]))))
    status, _ = rc.compute_status(rs, [pod("a")], now=T0, failure="FailedCreate: exceeded quota")
    assert status.conditions is not None
    cond = status.conditions[0]
    assert (cond.type, cond.status, cond.reason, cond.message) == ("ReplicaFailure", "True", "FailedCreate",
                                                                     "exceeded quota")
    rs.status = status
    still, _ = rc.compute_status(rs, [pod("a")], now=T0)
    assert still.conditions == status.conditions  # not yet at 2 replicas
    cleared, _ = rc.compute_status(rs, [pod("a"), pod("b")], now=T0)
    assert cleared.conditions is None
