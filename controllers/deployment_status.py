"""A Deployment's status, pure: the counts and the two conditions `kubectl rollout status` reads.

Progressing moves NewReplicaSetCreated / FoundNewReplicaSet -> ReplicaSetUpdated (each time
more pods are updated, ready or available, which also restarts the progress-deadline clock)
-> NewReplicaSetAvailable, or ProgressDeadlineExceeded when nothing moved for
`progressDeadlineSeconds`; DeploymentPaused / DeploymentResumed while paused. Available is
True (MinimumReplicasAvailable) while at least `replicas - maxUnavailable` pods are available.
ReplicaFailure mirrors a ReplicaSet that cannot create its pods.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from api.apps import Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet
from controllers.deployment_spec import DEFAULT_PROGRESS_DEADLINE, available, desired_replicas, fenceposts


def is_complete(deployment: Deployment, status: DeploymentStatus) -> bool:
    replicas = desired_replicas(deployment)
    return (status.updated_replicas == replicas and status.replicas == replicas
            and status.available_replicas == replicas
            and (status.observed_generation or 0) >= (deployment.metadata.generation or 0))


def compute_status(deployment: Deployment, rss: Sequence[ReplicaSet], new: ReplicaSet | None, *,
                   now: datetime, created: bool = False, paused: bool = False) -> DeploymentStatus:
    """The status fields `kubectl rollout status` reads, and the two conditions."""
    replicas = desired_replicas(deployment)
    _, unavailable = fenceposts(deployment)
    prev = deployment.status or DeploymentStatus()
    st = DeploymentStatus(
        observed_generation=deployment.metadata.generation,
        replicas=sum(rs.status.replicas for rs in rss if rs.status),
        updated_replicas=(new.status.replicas if new is not None and new.status else 0),
        ready_replicas=sum((rs.status.ready_replicas or 0) for rs in rss if rs.status),
        available_replicas=sum(available(rs) for rs in rss),
        terminating_replicas=sum((rs.status.terminating_replicas or 0) for rs in rss if rs.status),
        collision_count=prev.collision_count,
        conditions=[c.copy_deep() for c in prev.conditions or []],
    )
    st.unavailable_replicas = max(0, replicas - (st.available_replicas or 0))
    if (st.available_replicas or 0) >= replicas - unavailable:
        _set_condition(st, "Available", "True", "MinimumReplicasAvailable",
                       "Deployment has minimum availability.", now)
    else:
        _set_condition(st, "Available", "False", "MinimumReplicasUnavailable",
                       "Deployment does not have minimum availability.", now)
    _surface_replica_failure(st, rss, new, now)
    name = new.metadata.name if new is not None else ""
    progressing = st.condition("Progressing")
    if paused:
        if progressing is None or progressing.reason != "DeploymentPaused":
            _set_condition(st, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", now)
        return st
    if progressing is not None and progressing.reason == "DeploymentPaused":
        _set_condition(st, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed", now)
    if new is None:
        return st
    if created:
        _set_condition(st, "Progressing", "True", "NewReplicaSetCreated",
                       f'Created new replica set "{name}"', now)
    elif is_complete(deployment, st):
        _set_condition(st, "Progressing", "True", "NewReplicaSetAvailable",
                       f'ReplicaSet "{name}" has successfully progressed.', now)
    elif st.condition("Progressing") is None:
        _set_condition(st, "Progressing", "True", "FoundNewReplicaSet",
                       f'Found new replica set "{name}"', now)
    elif _has_progressed(prev, st):
        _set_condition(st, "Progressing", "True", "ReplicaSetUpdated",
                       f'ReplicaSet "{name}" is progressing.', now)
    elif _timed_out(deployment, st, now):
        _set_condition(st, "Progressing", "False", "ProgressDeadlineExceeded",
                       f'ReplicaSet "{name}" has timed out progressing.', now)
    return st


def _surface_replica_failure(st: DeploymentStatus, rss: Sequence[ReplicaSet], new: ReplicaSet | None,
                             now: datetime) -> None:
    """A ReplicaSet that cannot create its pods (quota, admission...) says so in condition
    ReplicaFailure; the Deployment shows it (the new ReplicaSet's first) until it clears."""
    ordered = ([new] if new is not None else []) + [rs for rs in rss if new is None or rs is not new]
    for rs in ordered:
        for cond in (rs.status.conditions if rs.status else None) or []:
            if cond.type == "ReplicaFailure" and cond.status == "True":
                _set_condition(st, "ReplicaFailure", "True", cond.reason or "FailedCreate", cond.message or "", now)
                return
    st.conditions = [c for c in st.conditions or [] if c.type != "ReplicaFailure"]


def _has_progressed(prev: DeploymentStatus, new: DeploymentStatus) -> bool:
    return ((new.updated_replicas or 0) > (prev.updated_replicas or 0)
            or (new.replicas or 0) < (prev.replicas or 0)
            or (new.ready_replicas or 0) > (prev.ready_replicas or 0)
            or (new.available_replicas or 0) > (prev.available_replicas or 0))


def _deadline(deployment: Deployment) -> int | None:
    d = deployment.spec.progress_deadline_seconds
    return DEFAULT_PROGRESS_DEADLINE if d is None else d


def _timed_out(deployment: Deployment, status: DeploymentStatus, now: datetime) -> bool:
    cond = status.condition("Progressing")
    deadline = _deadline(deployment)
    if cond is None or deadline is None or cond.reason == "NewReplicaSetAvailable":
        return False
    if cond.reason == "ProgressDeadlineExceeded":
        return True
    since = cond.last_update_time or cond.last_transition_time
    return since is not None and now >= since + timedelta(seconds=deadline)


def deadline_requeue(deployment: Deployment, status: DeploymentStatus, now: datetime) -> float | None:
    cond = status.condition("Progressing")
    deadline = _deadline(deployment)
    if cond is None or deadline is None or cond.status != "True" or cond.reason == "NewReplicaSetAvailable":
        return None
    since = cond.last_update_time or cond.last_transition_time or now
    return max(1.0, (since + timedelta(seconds=deadline) - now).total_seconds())


def _set_condition(st: DeploymentStatus, type_: str, status: str, reason: str, message: str,
                   now: datetime) -> None:
    conds = st.conditions if st.conditions is not None else []
    cur = next((c for c in conds if c.type == type_), None)
    if cur is not None and cur.status == status and cur.reason == reason and cur.message == message:
        if type_ == "Progressing" and reason == "ReplicaSetUpdated":
            cur.last_update_time = now  # progress resets the deadline clock
        return
    transition = cur.last_transition_time if cur is not None and cur.status == status else now
    new = DeploymentCondition(type=type_, status=status, reason=reason, message=message,
                              last_update_time=now, last_transition_time=transition)
    st.conditions = [c for c in conds if c.type != type_] + [new]
