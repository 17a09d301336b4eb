"""Pure helpers about pods, shared by the controller cores: activity, readiness, availability.

A pod is *active* while it may still run: not Succeeded or Failed, and not being deleted
(`metadata.deletionTimestamp` unset). Pods being deleted are counted apart ("terminating"): a
ReplicaSet replaces them at once, as Kubernetes does, so that a node that never confirms a
deletion cannot hold a ReplicaSet below its replica count.

A pod is *available* when it has been Ready for at least `minReadySeconds`, measured from the
Ready condition's lastTransitionTime against an injected `now`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from api.core import Pod, PodCondition


def is_active(pod: Pod) -> bool:
    phase = pod.status.phase if pod.status else None
    return pod.metadata.deletion_timestamp is None and phase not in ("Succeeded", "Failed")


def is_terminating(pod: Pod) -> bool:
    phase = pod.status.phase if pod.status else None
    return pod.metadata.deletion_timestamp is not None and phase not in ("Succeeded", "Failed")


def ready_condition(pod: Pod) -> PodCondition | None:
    for cond in (pod.status.conditions if pod.status else None) or []:
        if cond.type == "Ready":
            return cond
    return None


def is_ready(pod: Pod) -> bool:
    cond = ready_condition(pod)
    return cond is not None and cond.status == "True"


def available_in(pod: Pod, min_ready_seconds: int, now: datetime) -> float | None:
    """Seconds until the pod becomes available: 0 if it is, None if it is not even Ready."""
    cond = ready_condition(pod)
    if cond is None or cond.status != "True":
        return None
    if min_ready_seconds <= 0 or cond.last_transition_time is None:
        return 0.0
    at = cond.last_transition_time + timedelta(seconds=min_ready_seconds)
    return max(0.0, (at - now).total_seconds())


def is_available(pod: Pod, min_ready_seconds: int, now: datetime) -> bool:
    return available_in(pod, min_ready_seconds, now) == 0.0
