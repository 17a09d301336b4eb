"""Deployment decision core: fenceposts, hashing, and a simulated rolling update under
random readiness, checked against the surge and unavailability bounds at every step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.apps import (
    Deployment,
    DeploymentSpec,
    DeploymentStrategy,
    ReplicaSet,
    ReplicaSetStatus,
    RollingUpdateDeployment,
)
from api.core import Container, PodSpec, PodTemplateSpec
from api.meta import LabelSelector, ObjectMeta
from controllers import deployment_core as dc

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_deployment(replicas: int, image: str = "web:1", *, surge: int | str | None = None,
                    unavailable: int | str | None = None, strategy: str = "RollingUpdate",
                    generation: int = 1) -> Deployment:
    return Deployment(
        metadata=ObjectMeta(name="web", namespace="default", uid="d-uid", generation=generation),
        spec=DeploymentSpec(
            replicas=replicas,
            selector=LabelSelector(match_labels={"app": "web"}),
            template=PodTemplateSpec(metadata=ObjectMeta(labels={"app": "web"}),
                                     spec=PodSpec(containers=[Container(name="c", image=image)])),
            strategy=DeploymentStrategy(
                type=strategy,
                rolling_update=RollingUpdateDeployment(max_surge=surge, max_unavailable=unavailable)
                if strategy == "RollingUpdate" else None),
        ),
    )


def test_fenceposts_round_like_kubernetes() -> None:
    assert dc.resolve_fenceposts("25%", "25%", 10) == (3, 2)
    assert dc.resolve_fenceposts(None, None, 4) == (1, 1)
    assert dc.resolve_fenceposts(0, 0, 5) == (0, 1)
    assert dc.resolve_fenceposts("0%", "0%", 5) == (0, 1)
    assert dc.resolve_fenceposts(2, "50%", 3) == (2, 1)
    assert dc.resolve_fenceposts("1%", "99%", 10) == (1, 9)


def test_hash_is_stable_and_template_sensitive() -> None:
    a = make_deployment(3).spec.template
    b = make_deployment(3).spec.template
    c = make_deployment(3, image="web:2").spec.template
    assert dc.pod_template_hash(a) == dc.pod_template_hash(b)
    assert dc.pod_template_hash(a) != dc.pod_template_hash(c)
    assert dc.pod_template_hash(a) != dc.pod_template_hash(a, 1)
    assert all(ch in "bcdfghjklmnpqrstvwxz2456789" for ch in dc.pod_template_hash(a))


def test_first_sync_creates_named_rs_with_hash_label_and_annotations() -> None:
    d = make_deployment(5)
    p = dc.plan(d, [], now=T0)
    assert p.create is not None
    h = dc.pod_template_hash(d.spec.template)
    assert p.create.metadata.name == f"web-{h}"
    assert p.create.spec.replicas == 5
    assert p.create.spec.selector.match_labels == {"app": "web", dc.HASH_LABEL: h}
    assert p.create.spec.template is not None and p.create.spec.template.metadata is not None
    assert p.create.spec.template.metadata.labels == {"app": "web", dc.HASH_LABEL: h}
    ann = p.create.metadata.annotations or {}
    assert ann[dc.REVISION] == "1" and ann[dc.DESIRED_REPLICAS] == "5" and ann[dc.MAX_REPLICAS] == "7"
    owner = p.create.metadata.controller_ref()
    assert owner is not None and owner.uid == "d-uid"
    cond = p.status.condition("Progressing")
    assert cond is not None and cond.reason == "NewReplicaSetCreated"
    assert p.revision == "1"


# ---------------------------------------------------------------- simulation


class Sim:
    """ReplicaSets with pods (a list of readiness flags each); the ReplicaSet controller
    converges instantly, deleting not-ready pods first."""

    def __init__(self, d: Deployment) -> None:
        self.d = d
        self.rss: dict[str, ReplicaSet] = {}
        self.pods: dict[str, list[bool]] = {}
        self.now = T0

    def rs_list(self) -> list[ReplicaSet]:
        out = []
        for name, rs in self.rss.items():
            pods = self.pods[name]
            rs = rs.model_copy(update={"status": ReplicaSetStatus(
                replicas=len(pods), ready_replicas=sum(pods), available_replicas=sum(pods),
                observed_generation=rs.metadata.generation)})
            out.append(rs)
        return out

    def deploy_step(self) -> dc.Plan:
        p = dc.plan(self.d, self.rs_list(), now=self.now)
        if p.create is not None:
            rs = p.create.copy_deep()
            rs.metadata.creation_timestamp = self.now
            rs.metadata.generation = 1
            self.rss[rs.metadata.name or ""] = rs
            self.pods[rs.metadata.name or ""] = []
        for name, n in p.scale.items():
            self.rss[name].spec.replicas = n
        for name, ann in p.annotate.items():
            self.rss[name].metadata.annotations = {**(self.rss[name].metadata.annotations or {}), **ann}
        for name in p.delete:
            assert not self.pods[name]
            del self.rss[name], self.pods[name]
        self.d.status = p.status
        self.now += timedelta(seconds=1)
        return p

    def rs_step(self) -> None:
        for name, rs in self.rss.items():
            want = rs.spec.replicas or 0
            pods = self.pods[name]
            while len(pods) < want:
                pods.append(False)
            while len(pods) > want:
                pods.remove(False) if False in pods else pods.pop()

    def make_ready(self, pick: int) -> None:
        waiting = [(n, i) for n, pods in self.pods.items() for i, r in enumerate(pods) if not r]
        if waiting:
            n, i = waiting[pick % len(waiting)]
            self.pods[n][i] = True

    def total(self) -> int:
        return sum(len(p) for p in self.pods.values())

    def available(self) -> int:
        return sum(sum(p) for p in self.pods.values())


def _settle(sim: Sim) -> None:
    for _ in range(200):
        sim.deploy_step()
        sim.rs_step()
        for _ in range(sim.total()):
            sim.make_ready(0)
        if dc.is_complete(sim.d, sim.d.status or dc.DeploymentStatus()) and not sim.deploy_step().scale:
            return
    raise AssertionError("did not settle")


intorpct = st.one_of(st.integers(0, 4), st.sampled_from(["0%", "10%", "25%", "50%", "100%"]))


@settings(max_examples=150, deadline=None)
@given(replicas=st.integers(1, 8), surge=intorpct, unavailable=intorpct,
       actions=st.lists(st.tuples(st.sampled_from(["deploy", "rs", "ready"]), st.integers(0, 50)),
                        max_size=120))
def test_rolling_update_stays_within_bounds(replicas: int, surge: int | str, unavailable: int | str,
                                            actions: list[tuple[str, int]]) -> None:
    d = make_deployment(replicas, surge=surge, unavailable=unavailable)
    sim = Sim(d)
    _settle(sim)
    assert sim.total() == replicas and sim.available() == replicas
    max_surge, max_unavailable = dc.fenceposts(d)

    sim.d = make_deployment(replicas, image="web:2", surge=surge, unavailable=unavailable, generation=2)
    sim.d.status = d.status
    for action, arg in actions:
        if action == "deploy":
            sim.deploy_step()
        elif action == "rs":
            sim.rs_step()
        else:
            sim.make_ready(arg)
        assert sim.total() <= replicas + max_surge
        assert sim.available() >= replicas - max_unavailable
    # Whatever happened so far, the rollout completes once pods keep becoming ready.
    _settle(sim)
    new = dc.find_new(sim.d, sim.rs_list())
    assert new is not None and sim.pods[new.metadata.name or ""] == [True] * replicas
    assert sim.total() == replicas
    st_ = sim.d.status
    assert st_ is not None and dc.is_complete(sim.d, st_)
    cond = st_.condition("Progressing")
    assert cond is not None and cond.reason == "NewReplicaSetAvailable"
    avail = st_.condition("Available")
    assert avail is not None and avail.status == "True"


def test_recreate_scales_old_to_zero_before_new() -> None:
    d = make_deployment(3, strategy="Recreate")
    sim = Sim(d)
    _settle(sim)
    sim.d = make_deployment(3, image="web:2", strategy="Recreate", generation=2)
    sim.d.status = d.status
    p = sim.deploy_step()
    assert p.create is not None and p.create.spec.replicas == 0
    sim.deploy_step()
    new_name = p.create.metadata.name or ""
    assert all((rs.spec.replicas or 0) == 0 for rs in sim.rss.values())
    sim.deploy_step()  # old pods still there: the new RS must wait
    assert sim.rss[new_name].spec.replicas == 0
    sim.rs_step()
    sim.deploy_step()
    assert sim.rss[new_name].spec.replicas == 3
    _settle(sim)


def test_rollback_reuses_old_rs_and_bumps_revision() -> None:
    sim = Sim(make_deployment(2))
    _settle(sim)
    old_name = next(iter(sim.rss))
    status = sim.d.status
    sim.d = make_deployment(2, image="web:2", generation=2)
    sim.d.status = status
    _settle(sim)
    assert len(sim.rss) == 2
    status = sim.d.status
    sim.d = make_deployment(2, image="web:1", generation=3)
    sim.d.status = status
    p = sim.deploy_step()
    assert p.annotate[old_name][dc.REVISION] == "3"
    assert p.revision == "3"
    _settle(sim)
    assert sim.pods[old_name] == [True, True]


def test_history_limit_deletes_oldest_idle_rs() -> None:
    d = make_deployment(1)
    d.spec.revision_history_limit = 1
    sim = Sim(d)
    _settle(sim)
    for i, image in enumerate(["web:2", "web:3", "web:4"]):
        status = sim.d.status
        sim.d = make_deployment(1, image=image, generation=i + 2)
        sim.d.spec.revision_history_limit = 1
        sim.d.status = status
        _settle(sim)
    assert len(sim.rss) == 2  # the current one plus one in history
    revisions = sorted(dc.revision(rs) for rs in sim.rss.values())
    assert revisions == [3, 4]


def test_progress_deadline_exceeded_when_stuck() -> None:
    d = make_deployment(2)
    d.spec.progress_deadline_seconds = 30
    sim = Sim(d)
    _settle(sim)
    status = sim.d.status
    sim.d = make_deployment(2, image="broken", generation=2)
    sim.d.spec.progress_deadline_seconds = 30
    sim.d.status = status
    for _ in range(3):
        sim.deploy_step()
        sim.rs_step()
    sim.now += timedelta(seconds=40)
    sim.deploy_step()
    cond = (sim.d.status or dc.DeploymentStatus()).condition("Progressing")
    assert cond is not None and cond.status == "False" and cond.reason == "ProgressDeadlineExceeded"


def test_paused_deployment_does_not_roll() -> None:
    sim = Sim(make_deployment(2))
    _settle(sim)
    status = sim.d.status
    sim.d = make_deployment(2, image="web:2", generation=2)
    sim.d.spec.paused = True
    sim.d.status = status
    p = sim.deploy_step()
    assert p.create is None and not p.scale
    cond = (sim.d.status or dc.DeploymentStatus()).condition("Progressing")
    assert cond is not None and cond.reason == "DeploymentPaused"


def test_rollback_template_picks_previous_or_given_revision() -> None:
    sim = Sim(make_deployment(1))
    _settle(sim)
    for gen, image in ((2, "web:2"), (3, "web:3")):
        status = sim.d.status
        sim.d = make_deployment(1, image=image, generation=gen)
        sim.d.status = status
        _settle(sim)
    sim.d.metadata.annotations = {dc.REVISION: "3"}
    rss = sim.rs_list()
    prev = dc.rollback_template(sim.d, rss)
    assert prev.spec.containers[0].image == "web:2"
    assert prev.metadata is not None and prev.metadata.labels == {"app": "web"}
    assert dc.rollback_template(sim.d, rss, to_revision=1).spec.containers[0].image == "web:1"
    with pytest.raises(dc.RollbackError):
        dc.rollback_template(sim.d, rss, to_revision=7)


def test_scaling_mid_rollout_is_proportional_then_completes() -> None:
    sim = Sim(make_deployment(10, surge=3, unavailable=2))
    _settle(sim)
    status = sim.d.status
    sim.d = make_deployment(10, image="web:2", surge=3, unavailable=2, generation=2)
    sim.d.status = status
    sim.deploy_step()  # creates the new RS with 3
    sim.rs_step()
    sim.make_ready(0)
    sim.make_ready(0)
    sim.deploy_step()  # scales the old one down within bounds
    sim.rs_step()
    sizes = {n: rs.spec.replicas for n, rs in sim.rss.items()}
    new_name = max(sim.rss, key=lambda n: dc.revision(sim.rss[n]))
    old_name = next(n for n in sim.rss if n != new_name)
    assert sizes[new_name] == 3 and sizes[old_name] == 6
    status = sim.d.status
    sim.d = make_deployment(20, image="web:2", surge=3, unavailable=2, generation=3)
    sim.d.status = status
    p = sim.deploy_step()
    # allowed = 20 + surge 3 = 23, 14 to add: old 6*23/13 -> 11 (+5), new 3*23/13 -> 5 (+2), and the
    # rounding leftover 7 goes to the largest, the old one.
    assert p.scale == {old_name: 18, new_name: 5}
    assert all(a[dc.DESIRED_REPLICAS] == "20" and a[dc.MAX_REPLICAS] == "23" for a in p.annotate.values())
    _settle(sim)
    assert sim.pods[new_name] == [True] * 20 and not sim.pods[old_name]


@settings(max_examples=60, deadline=None)
@given(actions=st.lists(st.tuples(st.sampled_from(["deploy", "rs", "ready", "scale"]), st.integers(0, 12)),
                        max_size=80))
def test_rollout_with_scaling_events_always_completes(actions: list[tuple[str, int]]) -> None:
    sim = Sim(make_deployment(4))
    _settle(sim)
    replicas, generation = 4, 2
    status = sim.d.status
    sim.d = make_deployment(replicas, image="web:2", generation=generation)
    sim.d.status = status
    for action, arg in actions:
        if action == "deploy":
            sim.deploy_step()
        elif action == "rs":
            sim.rs_step()
        elif action == "ready":
            sim.make_ready(arg)
        else:
            replicas, generation, status = arg, generation + 1, sim.d.status
            sim.d = make_deployment(replicas, image="web:2", generation=generation)
            sim.d.status = status
    _settle(sim)
    new = dc.find_new(sim.d, sim.rs_list())
    assert new is not None and sim.pods[new.metadata.name or ""] == [True] * replicas
    assert sim.total() == replicas


def test_replica_failure_surfaces_on_the_deployment() -> None:
    from api.apps import ReplicaSetCondition

    sim = Sim(make_deployment(2))
    sim.deploy_step()
    rs = next(iter(sim.rss.values()))
    failing = rs.model_copy(update={"status": ReplicaSetStatus(
        replicas=0, conditions=[ReplicaSetCondition(type="ReplicaFailure", status="True", reason="FailedCreate",
                                                    message="exceeded quota")])})
    p = dc.plan(sim.d, [failing], now=T0)
    cond = p.status.condition("ReplicaFailure")
    assert cond is not None and (cond.reason, cond.message) == ("FailedCreate", "exceeded quota")
    sim.d.status = p.status
    ok = dc.plan(sim.d, sim.rs_list(), now=T0)
    assert ok.status.condition("ReplicaFailure") is None
