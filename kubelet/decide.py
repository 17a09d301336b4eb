"""What a pod worker should do next, pure: (pod spec, observed containers, backoffs, now) -> Plan.

No I/O and no clock here: the worker observes the runtime, calls `plan_pod`, carries out
the plan, observes again and computes the status (`kubelet.podstatus`). Running the same
inputs twice gives the same plan, so a sync that fails half-way is simply run again.

Rules (Kubernetes' kuberuntime `computePodActions`, re-derived from its documentation):

* A pod being deleted, or one whose phase is terminal, starts nothing and kills what runs.
* Init containers run one at a time, in order; the next starts only after the previous one
  exited 0. A failed init container is restarted (with backoff) unless restartPolicy is
  Never, which fails the pod. Once any main container exists, the init phase is over for
  good (its containers may have been garbage-collected).
* Main containers all start together. An exited one restarts per restartPolicy: Always
  always, OnFailure when its exit code is not 0, Never never.
* A restart waits out the container's CrashLoopBackOff: the first restart is immediate,
  then 10 s, 20 s, ... capped at 5 min; a container that ran for 10 min resets the delay.
* A running container whose liveness probe failed is killed (it then restarts per policy).
* A container recorded but never started (the kubelet died between create and start) is
  removed and started afresh.

Invariant: a container name appears in at most one of `start`, `waiting`; `kill` names
container ids, never one the plan also starts a sibling for in the same pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from kubelet.events import go_duration

State = Literal["created", "running", "exited"]


@dataclass(frozen=True, slots=True)
class Observed:
    """One container instance, as the runtime reports it. `attempt` is its restart count."""

    id: str
    name: str
    attempt: int
    state: State
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    reason: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    initial: float = 10.0
    cap: float = 300.0
    reset_after: float = 600.0  # a container that ran this long starts its backoff afresh


@dataclass(frozen=True, slots=True)
class Backoff:
    """The delay the next restart of one container must wait after its last exit."""

    delay: float


def next_backoff(prev: Backoff | None, *, ran_for: float, policy: BackoffPolicy) -> Backoff:
    """The backoff after a restart now: doubled, capped; reset by a long enough run."""
    if prev is None or ran_for >= policy.reset_after:
        return Backoff(policy.initial)
    return Backoff(min(prev.delay * 2, policy.cap))


def backoff_left(prev: Backoff | None, *, finished_at: float, ran_for: float, now: float,
                 policy: BackoffPolicy) -> float:
    """Seconds until a restart is allowed (<= 0: now). No backoff yet, or a long run: now."""
    if prev is None or ran_for >= policy.reset_after:
        return 0.0
    return finished_at + prev.delay - now


@dataclass(frozen=True, slots=True)
class ContainerView:
    """What the decision needs of a pod's container spec."""

    name: str
    init: bool = False


@dataclass(slots=True)
class Plan:
    start: list[str] = field(default_factory=list)  # container names to create and start now
    kill: list[tuple[str, str]] = field(default_factory=list)  # (container id, why)
    remove: list[str] = field(default_factory=list)  # never-started container ids to drop first
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (reason, message)
    requeue_after: float | None = None
    init_failed: bool = False  # an init container failed for good: the pod is Failed

    def _requeue(self, after: float) -> None:
        after = max(after, 0.0)
        self.requeue_after = after if self.requeue_after is None else min(self.requeue_after, after)


def should_restart(restart_policy: str, exit_code: int | None) -> bool:
    if restart_policy == "Never":
        return False
    if restart_policy == "OnFailure":
        return exit_code != 0
    return True  # Always (the default)


def plan_pod(containers: Sequence[ContainerView], observed: Mapping[str, Observed], *, restart_policy: str,
             terminating: bool, terminal: bool, unhealthy: frozenset[str] = frozenset(),
             backoffs: Mapping[str, Backoff] | None = None, now: float,
             policy: BackoffPolicy = BackoffPolicy(), pod_name: str = "") -> Plan:
    """The next actions for one pod. `observed` maps a container name to its latest instance;
    `unhealthy` holds ids of running containers whose liveness probe failed."""
    plan = Plan()
    backoffs = backoffs or {}
    if terminating or terminal:
        plan.kill = [(o.id, "the pod is being deleted" if terminating else "the pod has finished")
                     for o in observed.values() if o.state == "running"]
        return plan
    inits = [c for c in containers if c.init]
    mains = [c for c in containers if not c.init]
    for c in (c for c in containers if c.name in observed and observed[c.name].state == "created"):
        plan.remove.append(observed[c.name].id)
    live = {n: o for n, o in observed.items() if o.state != "created"}

    if not any(c.name in live for c in mains):
        for c in inits:
            o = live.get(c.name)
            if o is None:
                plan.start.append(c.name)
                return plan
            if o.state == "running":
                return plan
            if o.exit_code == 0:
                continue
            if restart_policy == "Never":
                plan.init_failed = True
                return plan
            _restart(plan, c.name, o, backoffs, now, policy, pod_name)
            return plan

    for c in mains:
        o = live.get(c.name)
        if o is None:
            plan.start.append(c.name)
        elif o.state == "running":
            if o.id in unhealthy:
                plan.kill.append((o.id, "its liveness probe failed"))
        elif should_restart(restart_policy, o.exit_code):
            _restart(plan, c.name, o, backoffs, now, policy, pod_name)
    return plan


def _restart(plan: Plan, name: str, o: Observed, backoffs: Mapping[str, Backoff], now: float,
             policy: BackoffPolicy, pod_name: str) -> None:
    finished = o.finished_at if o.finished_at is not None else now
    ran_for = finished - (o.started_at if o.started_at is not None else finished)
    prev = backoffs.get(name)
    left = backoff_left(prev, finished_at=finished, ran_for=ran_for, now=now, policy=policy)
    if left > 0:
        assert prev is not None
        plan.waiting[name] = ("CrashLoopBackOff",
                              f"back-off {go_duration(prev.delay)} restarting failed container={name} pod={pod_name}")
        plan._requeue(left)
    else:
        plan.start.append(name)
