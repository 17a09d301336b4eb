"""The kubelet's pure decisions: plan_pod, backoff, phase and status."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from api.core import Container, ExecAction, Pod, PodSpec, Probe
from api.meta import ObjectMeta
from kubelet.decide import (
    Backoff,
    BackoffPolicy,
    ContainerView,
    Observed,
    backoff_left,
    next_backoff,
    plan_pod,
    should_restart,
)
from kubelet.logs import LogOptions, parse_records, render, select_lines
from kubelet.podstatus import Observation, phase, pod_status
from kubelet.probes import ProbeState, Timing, record

NOW = 1_000_000.0
POLICY = BackoffPolicy()


def exited(name: str, code: int, *, attempt: int = 0, ran: float = 1.0, at: float = NOW) -> Observed:
    return Observed(id=f"{name}-{attempt}", name=name, attempt=attempt, state="exited", started_at=at - ran,
                    finished_at=at, exit_code=code, reason="Completed" if code == 0 else "Error")


def running(name: str, *, attempt: int = 0) -> Observed:
    return Observed(id=f"{name}-{attempt}", name=name, attempt=attempt, state="running", started_at=NOW - 5)


MAINS = [ContainerView("a"), ContainerView("b")]


def test_fresh_pod_starts_every_main_container() -> None:
    plan = plan_pod(MAINS, {}, restart_policy="Always", terminating=False, terminal=False, now=NOW)
    assert plan.start == ["a", "b"] and not plan.kill


def test_init_containers_run_one_at_a_time_in_order() -> None:
    views = [ContainerView("i1", init=True), ContainerView("i2", init=True), *MAINS]
    kw = dict(restart_policy="Always", terminating=False, terminal=False, now=NOW)
    assert plan_pod(views, {}, **kw).start == ["i1"]  # type: ignore[arg-type]
    assert plan_pod(views, {"i1": running("i1")}, **kw).start == []  # type: ignore[arg-type]
    assert plan_pod(views, {"i1": exited("i1", 0)}, **kw).start == ["i2"]  # type: ignore[arg-type]
    done = {"i1": exited("i1", 0), "i2": exited("i2", 0)}
    assert plan_pod(views, done, **kw).start == ["a", "b"]  # type: ignore[arg-type]
    failed = plan_pod(views, {"i1": exited("i1", 1)}, restart_policy="Never", terminating=False, terminal=False,
                      now=NOW)
    assert failed.init_failed and not failed.start


def test_restart_policies() -> None:
    assert should_restart("Always", 0) and should_restart("Always", 1)
    assert not should_restart("OnFailure", 0) and should_restart("OnFailure", 2)
    assert not should_restart("Never", 1)


def test_first_restart_is_immediate_then_crashloop_backoff() -> None:
    obs = {"a": exited("a", 1), "b": running("b")}
    plan = plan_pod(MAINS, obs, restart_policy="Always", terminating=False, terminal=False, now=NOW)
    assert plan.start == ["a"]
    plan = plan_pod(MAINS, obs, restart_policy="Always", terminating=False, terminal=False, now=NOW + 1,
                    backoffs={"a": Backoff(10)})
    assert plan.start == [] and plan.waiting["a"][0] == "CrashLoopBackOff"
    assert plan.requeue_after == 9


def test_liveness_failure_kills_and_deletion_kills_all() -> None:
    obs = {"a": running("a"), "b": running("b")}
    plan = plan_pod(MAINS, obs, restart_policy="Always", terminating=False, terminal=False, now=NOW,
                    unhealthy=frozenset({"a-0"}))
    assert [cid for cid, _ in plan.kill] == ["a-0"]
    plan = plan_pod(MAINS, obs, restart_policy="Always", terminating=True, terminal=False, now=NOW)
    assert sorted(cid for cid, _ in plan.kill) == ["a-0", "b-0"] and not plan.start


@given(st.lists(st.floats(min_value=0, max_value=2000), min_size=1, max_size=30))
@settings(max_examples=200)
def test_backoff_doubles_is_capped_and_resets_after_a_long_run(runs: list[float]) -> None:
    b: Backoff | None = None
    for ran in runs:
        nb = next_backoff(b, ran_for=ran, policy=POLICY)
        assert POLICY.initial <= nb.delay <= POLICY.cap
        if ran >= POLICY.reset_after or b is None:
            assert nb.delay == POLICY.initial
        else:
            assert nb.delay == min(b.delay * 2, POLICY.cap)
        b = nb


@given(st.dictionaries(st.sampled_from(["a", "b"]),
                       st.tuples(st.sampled_from(["running", "exited", "created"]), st.integers(0, 2),
                                 st.integers(0, 5), st.floats(0, 400)), max_size=2),
       st.sampled_from(["Always", "OnFailure", "Never"]), st.booleans())
@settings(max_examples=300)
def test_plan_invariants(spec: dict[str, tuple[str, int, int, float]], policy: str, unhealthy: bool) -> None:
    obs = {n: Observed(id=f"{n}-{a}", name=n, attempt=a, state=s, started_at=NOW - 10, finished_at=NOW - 5,  # type: ignore[arg-type]
                       exit_code=code if s == "exited" else None) for n, (s, code, a, _) in spec.items()}
    backoffs = {n: Backoff(d) for n, (_, _, _, d) in spec.items() if d > 0}
    bad = frozenset(o.id for o in obs.values()) if unhealthy else frozenset()
    plan = plan_pod(MAINS, obs, restart_policy=policy, terminating=False, terminal=False, now=NOW,
                    backoffs=backoffs, unhealthy=bad)
    assert not set(plan.start) & set(plan.waiting)
    for name in plan.start:  # never two instances of one container running
        assert name not in obs or obs[name].state != "running"
    killed = {cid for cid, _ in plan.kill}
    assert all(obs[n].state == "running" for n in obs if obs[n].id in killed)
    if policy == "Never":
        assert all(n not in obs or obs[n].state == "created" for n in plan.start)
    assert plan_pod(MAINS, obs, restart_policy=policy, terminating=False, terminal=False, now=NOW,
                    backoffs=backoffs, unhealthy=bad) == plan  # deterministic


def test_backoff_left() -> None:
    assert backoff_left(None, finished_at=NOW, ran_for=1, now=NOW, policy=POLICY) == 0
    assert backoff_left(Backoff(20), finished_at=NOW, ran_for=1, now=NOW + 5, policy=POLICY) == 15
    assert backoff_left(Backoff(20), finished_at=NOW, ran_for=700, now=NOW, policy=POLICY) == 0


# ---------------------------------------------------------------- status


def make_pod(restart: str = "Always", *, probe: bool = False) -> Pod:
    ready = Probe(exec=ExecAction(command=["true"])) if probe else None
    c = Container(name="a", image="busybox", readiness_probe=ready)
    return Pod(metadata=ObjectMeta(name="p", namespace="default", uid="u"),
               spec=PodSpec(containers=[c], restart_policy=restart))


T = datetime(2026, 1, 1, tzinfo=UTC)


def test_status_running_ready_and_restart_count() -> None:
    pod = make_pod()
    s = pod_status(pod, Observation(latest={"a": running("a", attempt=2)}, previous={"a": exited("a", 1, attempt=1)},
                                    host_ip="10.0.0.1"), now=T)
    assert s.phase == "Running" and s.condition("Ready").status == "True"  # type: ignore[union-attr]
    cs = s.container_statuses[0]  # type: ignore[index]
    assert cs.restart_count == 2 and cs.last_state.terminated.exit_code == 1  # type: ignore[union-attr]


def test_readiness_probe_gates_ready() -> None:
    pod = make_pod(probe=True)
    s = pod_status(pod, Observation(latest={"a": running("a")}), now=T)
    assert s.condition("Ready").status == "False" and s.condition("ContainersReady").status == "False"  # type: ignore[union-attr]
    s = pod_status(pod, Observation(latest={"a": running("a")}, ready={"a-0": True}), now=T)
    assert s.condition("Ready").status == "True"  # type: ignore[union-attr]


def test_phases() -> None:
    assert pod_status(make_pod(), Observation(), now=T).phase == "Pending"
    assert pod_status(make_pod("Never"), Observation(latest={"a": exited("a", 0)}), now=T).phase == "Succeeded"
    assert pod_status(make_pod("Never"), Observation(latest={"a": exited("a", 2)}), now=T).phase == "Failed"
    assert pod_status(make_pod("OnFailure"), Observation(latest={"a": exited("a", 2)},
                                                         waiting={"a": ("CrashLoopBackOff", "")}), now=T).phase \
        == "Running"
    s = pod_status(make_pod(), Observation(waiting={"a": ("ErrImagePull", "x")}), now=T)
    assert s.phase == "Pending" and s.container_statuses[0].state.waiting.reason == "ErrImagePull"  # type: ignore[index,union-attr]


def test_terminal_phase_sticks_and_transition_times_are_kept() -> None:
    pod = make_pod("Never")
    first = pod_status(pod, Observation(latest={"a": exited("a", 0)}), now=T)
    pod.status = first
    later = datetime(2026, 1, 2, tzinfo=UTC)
    again = pod_status(pod, Observation(latest={"a": running("a")}), now=later)
    assert again.phase == "Succeeded"
    assert again.condition("PodScheduled").last_transition_time == T  # type: ignore[union-attr]
    assert phase(pod, Observation(), []) == "Succeeded"


# ---------------------------------------------------------------- probes and logs


@given(st.lists(st.booleans(), max_size=40), st.integers(1, 4), st.integers(1, 4))
def test_probe_thresholds(results: list[bool], success: int, failure: int) -> None:
    timing = Timing(success_threshold=success, failure_threshold=failure)
    state = ProbeState(ok=True)
    for i, r in enumerate(results):
        state = record(state, r, timing)
        tail = results[: i + 1]
        if len(tail) >= failure and not any(tail[-failure:]):
            assert not state.ok
        if len(tail) >= success and all(tail[-success:]):
            assert state.ok


def test_cri_log_records_tail_and_partial_lines() -> None:
    data = (b"2026-01-01T00:00:01.000000000Z stdout F one\n"
            b"2026-01-01T00:00:02.000000000Z stderr P tw\n"
            b"2026-01-01T00:00:02.100000000Z stderr F o\n"
            b"2026-01-01T00:00:03.000000000Z stdout F three\n"
            b"2026-01-01T00:00:04.000000000Z stdout P unfinis")
    records, rest = parse_records(data)
    assert [r.text for r in records] == [b"one", b"two", b"three"]
    assert rest.endswith(b"unfinis")
    tail = select_lines(records, LogOptions(tail_lines=1), now=0)
    assert render(tail, timestamps=True) == b"2026-01-01T00:00:03.000000000Z three\n"
    since = select_lines(records, LogOptions(since_seconds=2.5), now=datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
                         .timestamp())
    assert [r.text for r in since] == [b"three"]


def test_node_conditions_from_machine_facts() -> None:
    from kubelet.node import MachineStats, node_conditions

    ok = MachineStats(cpus=2, memory_total=8 << 30, memory_available=4 << 30, disk_total=100, disk_available=50,
                      pids=100, pid_max=1000)
    conds = node_conditions(ok, [], now=T)
    assert {c.type: c.status for c in conds} == {"MemoryPressure": "False", "DiskPressure": "False",
                                                 "PIDPressure": "False", "Ready": "True"}
    tight = MachineStats(cpus=2, memory_total=8 << 30, memory_available=50 << 20, disk_total=100, disk_available=5,
                         pids=950, pid_max=1000)
    later = datetime(2026, 1, 3, tzinfo=UTC)
    after = node_conditions(tight, conds, now=later, runtime_ok=False)
    by = {c.type: c for c in after}
    assert all(by[t].status == "True" for t in ("MemoryPressure", "DiskPressure", "PIDPressure"))
    assert by["Ready"].status == "False" and by["Ready"].last_transition_time == later
    same = node_conditions(tight, after, now=datetime(2026, 1, 4, tzinfo=UTC), runtime_ok=False)
    assert {c.type: c.last_transition_time for c in same} == {c.type: c.last_transition_time for c in after}
