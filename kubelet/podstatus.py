"""A pod's status from what the kubelet observed, pure: phase, conditions, container statuses.

Inputs are the pod (spec and its previous status), the latest and previous instance of
each container, the waiting reasons the worker knows (image pulls, CrashLoopBackOff),
probe results and the time. Output is the `PodStatus` to PUT on `/status`.

Invariants:
* A terminal phase (Succeeded, Failed) never changes back.
* `lastTransitionTime` of a condition only moves when its status changes.
* `restartCount` is the attempt number of the latest instance: it survives kubelet restarts
  because the runtime keeps it (in the container's log path, see `kubelet.runtime`).
* Phase follows Kubernetes' rules: Pending until every container has been created and the
  init containers are done; Running while one runs (or is being restarted); Succeeded when
  all exited 0 and none will restart; Failed when all exited, one with an error, and
  restartPolicy Never (or an init container failed for good).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from api.core import (
    Container,
    ContainerState,
    ContainerStateRunning,
    ContainerStateTerminated,
    ContainerStateWaiting,
    ContainerStatus,
    Pod,
    PodCondition,
    PodIP,
    PodStatus,
)
from kubelet.decide import Observed

TERMINAL = ("Succeeded", "Failed")


def _time(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(int(ts), UTC)


@dataclass(slots=True)
class Observation:
    """Everything `pod_status` needs besides the pod itself."""

    latest: Mapping[str, Observed] = field(default_factory=dict)
    previous: Mapping[str, Observed] = field(default_factory=dict)
    waiting: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # name -> (reason, message)
    ready: Mapping[str, bool] = field(default_factory=dict)  # container id -> readiness probe result
    started: Mapping[str, bool] = field(default_factory=dict)  # container id -> startup probe passed
    image_ids: Mapping[str, str] = field(default_factory=dict)  # container id -> image digest
    init_failed: bool = False
    host_ip: str | None = None
    pod_ip: str | None = None


def terminated(o: Observed) -> ContainerStateTerminated:
    return ContainerStateTerminated(exit_code=o.exit_code if o.exit_code is not None else 255,
                                    reason=o.reason or ("Completed" if o.exit_code == 0 else "Error"),
                                    message=o.message or None, started_at=_time(o.started_at),
                                    finished_at=_time(o.finished_at), container_id=f"kubelite://{o.id}")


def container_status(c: Container, obs: Observation, *, default_waiting: str) -> ContainerStatus:
    o = obs.latest.get(c.name)
    prev = obs.previous.get(c.name)
    status = ContainerStatus(name=c.name, image=c.image or "", restart_count=o.attempt if o else 0)
    if prev is not None and prev.state == "exited":
        status.last_state = ContainerState(terminated=terminated(prev))
    waiting = obs.waiting.get(c.name)
    if o is not None:
        status.container_id = f"kubelite://{o.id}"
        status.image_id = obs.image_ids.get(o.id, "")
    if o is not None and o.state == "running" and waiting is None:
        started = obs.started.get(o.id, c.startup_probe is None)
        status.state = ContainerState(running=ContainerStateRunning(started_at=_time(o.started_at)))
        status.started = started
        status.ready = started and obs.ready.get(o.id, c.readiness_probe is None)
    elif waiting is not None:
        status.state = ContainerState(waiting=ContainerStateWaiting(reason=waiting[0], message=waiting[1] or None))
        status.started = False
        if o is not None and o.state == "exited":
            status.last_state = ContainerState(terminated=terminated(o))
    elif o is not None and o.state == "exited":
        status.state = ContainerState(terminated=terminated(o))
        status.started = False
    else:
        status.state = ContainerState(waiting=ContainerStateWaiting(reason=default_waiting))
        status.started = False
    return status


def init_done(pod: Pod, obs: Observation) -> bool:
    if any(c.name in obs.latest for c in pod.spec.containers):
        return True
    return all((o := obs.latest.get(c.name)) is not None and o.state == "exited" and o.exit_code == 0
               for c in pod.spec.init_containers or [])


def phase(pod: Pod, obs: Observation, statuses: Sequence[ContainerStatus]) -> str:
    previous = pod.status.phase if pod.status else None
    if previous in TERMINAL:
        return previous
    if obs.init_failed:
        return "Failed"
    if not init_done(pod, obs):
        return "Pending"
    policy = pod.spec.restart_policy or "Always"
    running = stopped = succeeded = waiting = 0
    for s in statuses:
        state = s.state or ContainerState()
        if state.running is not None:
            running += 1
        elif state.terminated is not None:
            stopped += 1
            succeeded += state.terminated.exit_code == 0
        elif s.last_state is not None and s.last_state.terminated is not None:
            stopped += 1  # waiting to restart: it has run
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(previous: PodStatus | None, type_: str, ok: bool, now: datetime, reason: str | None = None,
               message: str | None = None) -> PodCondition:
    status = "True" if ok else "False"
    old = previous.condition(type_) if previous else None
    at = old.last_transition_time if old is not None and old.status == status else now
    return PodCondition(type=type_, status=status, last_transition_time=at, reason=None if ok else reason,
                        message=None if ok else message)


def pod_status(pod: Pod, obs: Observation, *, now: datetime) -> PodStatus:
    prev = pod.status
    inits_ready = init_done(pod, obs)
    init_statuses = [container_status(c, obs, default_waiting="PodInitializing")
                     for c in pod.spec.init_containers or []]
    for s in init_statuses:
        s.ready = s.state is not None and s.state.terminated is not None and s.state.terminated.exit_code == 0
    statuses = [container_status(c, obs, default_waiting="ContainerCreating" if inits_ready else "PodInitializing")
                for c in pod.spec.containers]
    ph = phase(pod, obs, statuses)
    not_ready = [s.name for s in statuses if not s.ready]
    containers_ready = not not_ready and ph == "Running"
    unready_msg = f"containers with unready status: [{' '.join(not_ready)}]" if not_ready else None
    conditions = [
        _condition(prev, "PodScheduled", True, now),
        _condition(prev, "Initialized", inits_ready, now, "ContainersNotInitialized",
                   "containers with incomplete status: [{}]".format(
                       " ".join(s.name for s in init_statuses if not s.ready))),
        _condition(prev, "ContainersReady", containers_ready, now, "ContainersNotReady", unready_msg),
        _condition(prev, "Ready", containers_ready, now, "ContainersNotReady", unready_msg),
    ]
    if ph in TERMINAL:
        # A finished pod is not ready, whatever it was; PodCompleted is Kubernetes' reason.
        for cond in conditions[2:]:
            if cond.status == "True":
                cond.status, cond.last_transition_time = "False", now
            cond.reason = "PodCompleted"
    start = prev.start_time if prev and prev.start_time else now
    return PodStatus(
        phase=ph, conditions=conditions, host_ip=obs.host_ip,
        host_ips=[PodIP(ip=obs.host_ip)] if obs.host_ip else None,
        pod_ip=obs.pod_ip, pod_ips=[PodIP(ip=obs.pod_ip)] if obs.pod_ip else None, start_time=start,
        init_container_statuses=init_statuses or None, container_statuses=statuses,
        qos_class=qos_class(pod), message=prev.message if prev else None, reason=prev.reason if prev else None,
        nominated_node_name=prev.nominated_node_name if prev else None,
    )


def qos_class(pod: Pod) -> str:
    """Guaranteed: every container has cpu and memory limits equal to requests; BestEffort: none
    has any; Burstable otherwise."""
    any_set, guaranteed = False, True
    for c in [*pod.spec.containers, *(pod.spec.init_containers or [])]:
        limits = (c.resources.limits if c.resources else None) or {}
        requests = (c.resources.requests if c.resources else None) or {}
        if limits or requests:
            any_set = True
        for res in ("cpu", "memory"):
            if res not in limits or requests.get(res, limits[res]) != limits[res]:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def same_status(a: PodStatus | None, b: PodStatus) -> bool:
    """Equal as written to the API (so an unchanged status costs no write)."""
    return a is not None and a.to_dict() == b.to_dict()
