"""The ReplicaSet controller's decisions, pure: which pods to create or delete, in what batches,
what status to report, and when the controller's own writes have been observed.

Invariants:
- `plan` never asks for creations while expectations are unsatisfied (earlier creations or
  deletions not yet seen back from the watch): a sync that ran on a stale cache cannot create
  the same pods twice.
- Terminating pods (deletionTimestamp set) are not active: they neither count toward replicas
  nor get deleted again.
- Deletion order is least valuable first (`deletion_rank`): unscheduled before scheduled,
  Pending before Unknown before Running, not ready before ready, ready for less time first,
  more restarts first, newer before older.
- Creations go out in slow-start batches 1, 2, 4, ... and stop at the first failure, so a
  quota or admission error costs one request instead of `replicas` requests; the caller then
  raises and the workqueue backs off exponentially.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from api.apps import ReplicaSet, ReplicaSetCondition, ReplicaSetStatus
from api.core import Pod
from api.selectors import LabelSelector
from controllers.podutil import available_in, is_active, is_ready, is_terminating, ready_condition

# Kubernetes caps one sync's creations or deletions (burstReplicas) so that a huge scale-up
# does not block the worker for long; the next sync continues.
BURST_REPLICAS = 500
# Expectations older than this are presumed lost (a watch event never came) and are dropped.
EXPECTATIONS_TTL = 300.0

T = TypeVar("T", Pod, ReplicaSet)

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def deletion_rank(pod: Pod) -> tuple[int, int, int, float, int, float]:
    """Sort key: the pod to delete first sorts first."""
    scheduled = 1 if pod.spec.node_name else 0
    phase = _PHASE_RANK.get((pod.status.phase if pod.status else None) or "Pending", 0)
    ready = 1 if is_ready(pod) else 0
    cond = ready_condition(pod)
    # Ready for a shorter time is less valuable: later transition sorts first (negated).
    ready_since = -(cond.last_transition_time or _EPOCH).timestamp() if ready and cond else 0.0
    restarts = sum(c.restart_count for c in (pod.status.container_statuses if pod.status else None) or [])
    created = -(pod.metadata.creation_timestamp or _EPOCH).timestamp()
    return (scheduled, phase, ready, ready_since, -restarts, created)


def pods_to_delete(pods: Iterable[Pod], count: int) -> list[Pod]:
    """The `count` least valuable active pods, ties broken by name for determinism."""
    active = [p for p in pods if is_active(p)]
    active.sort(key=lambda p: (deletion_rank(p), p.metadata.name or ""))
    return active[: max(0, count)]


def slow_start_batches(count: int, *, initial: int = 1) -> list[int]:
    """Batch sizes 1, 2, 4, ... summing to `count`."""
    batches: list[int] = []
    size = max(1, initial)
    remaining = count
    while remaining > 0:
        batches.append(min(size, remaining))
        remaining -= batches[-1]
        size *= 2
    return batches


@dataclass(frozen=True)
class ReplicaPlan:
    """What one sync should do: create `create` pods, or delete exactly `delete` pods."""

    create: int = 0
    delete: tuple[Pod, ...] = ()


def plan(desired: int, pods: Iterable[Pod], *, expectations_satisfied: bool) -> ReplicaPlan:
    """Compare the desired replica count with the active pods this ReplicaSet owns."""
    if not expectations_satisfied:
        return ReplicaPlan()
    owned = list(pods)
    active = sum(1 for p in owned if is_active(p))
    diff = active - desired
    if diff < 0:
        return ReplicaPlan(create=min(-diff, BURST_REPLICAS))
    if diff > 0:
        return ReplicaPlan(delete=tuple(pods_to_delete(owned, min(diff, BURST_REPLICAS))))
    return ReplicaPlan()


def compute_status(rs: ReplicaSet, pods: Iterable[Pod], *, now: datetime,
                   failure: str | None = None) -> tuple[ReplicaSetStatus, float | None]:
    """The status the ReplicaSet should report, and seconds until a pod becomes available
    (None if no pod is waiting out minReadySeconds), so the caller can requeue then.

    `failure`: why the last creation or deletion failed ("FailedCreate: ..."), reported as
    condition ReplicaFailure=True; it is cleared once the ReplicaSet has its replicas."""
    min_ready = rs.spec.min_ready_seconds or 0
    template_labels = (rs.spec.template.metadata.labels if rs.spec.template and rs.spec.template.metadata
                       else None) or {}
    replicas = ready = available = fully_labeled = terminating = 0
    wait: float | None = None
    for pod in pods:
        if is_terminating(pod):
            terminating += 1
            continue
        if not is_active(pod):
            continue
        replicas += 1
        labels = pod.metadata.labels or {}
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully_labeled += 1
        if is_ready(pod):
            ready += 1
            left = available_in(pod, min_ready, now)
            if left == 0.0:
                available += 1
            elif left is not None:
                wait = left if wait is None else min(wait, left)
    conditions = [c.copy_deep() for c in (rs.status.conditions if rs.status else None) or []]
    if failure is not None:
        reason, _, message = failure.partition(": ")
        if not any(c.type == "ReplicaFailure" and c.reason == reason and c.message == message for c in conditions):
            conditions = [c for c in conditions if c.type != "ReplicaFailure"]
            conditions.append(ReplicaSetCondition(type="ReplicaFailure", status="True", reason=reason,
                                                  message=message, last_transition_time=now))
    elif replicas == (rs.spec.replicas if rs.spec.replicas is not None else 1):
        conditions = [c for c in conditions if c.type != "ReplicaFailure"]
    status = ReplicaSetStatus(
        replicas=replicas, fully_labeled_replicas=fully_labeled, ready_replicas=ready,
        available_replicas=available, terminating_replicas=terminating,
        observed_generation=rs.metadata.generation, conditions=conditions or None,
    )
    return status, wait


def claim(objs: Iterable[T], *, owner_uid: str, selector: LabelSelector) -> tuple[list[T], list[T], list[T]]:
    """Split pods (or ReplicaSets) into (owned and matching, orphans to adopt, owned but no longer matching).

    Pods controlled by another owner are never touched; pods being deleted are not adopted.
    """
    owned: list[T] = []
    adopt: list[T] = []
    release: list[T] = []
    for pod in objs:
        ref = pod.metadata.controller_ref()
        matches = selector.matches(pod.metadata.labels)
        if ref is not None and ref.uid == owner_uid:
            (owned if matches else release).append(pod)
        elif ref is None and matches and pod.metadata.deletion_timestamp is None:
            adopt.append(pod)
    return owned, adopt, release


@dataclass
class _Expectation:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    set_at: float = 0.0


class Expectations:
    """Per-key counts of creations and deletions this controller has issued but not yet
    observed through the informer. `now` is injected (monotonic seconds) for tests.

    A creation is observed when an owned pod appears (`creation_observed`); a deletion when
    the pod's uid disappears or gains a deletionTimestamp (`deletion_observed`). A failed
    creation must be un-expected by the caller (`creation_observed` too), since no event
    will ever come for it.
    """

    def __init__(self, *, ttl: float = EXPECTATIONS_TTL) -> None:
        self._ttl = ttl
        self._by_key: dict[str, _Expectation] = {}

    def satisfied(self, key: str, now: float) -> bool:
        exp = self._by_key.get(key)
        if exp is None:
            return True
        if exp.adds <= 0 and not exp.deletes:
            return True
        return now - exp.set_at > self._ttl

    def expect_creations(self, key: str, count: int, now: float) -> None:
        exp = self._by_key.setdefault(key, _Expectation())
        exp.adds = max(0, exp.adds) + count
        exp.set_at = now

    def expect_deletions(self, key: str, uids: Iterable[str], now: float) -> None:
        exp = self._by_key.setdefault(key, _Expectation())
        exp.deletes |= set(uids)
        exp.set_at = now

    def creation_observed(self, key: str, count: int = 1) -> None:
        exp = self._by_key.get(key)
        if exp is not None:
            exp.adds -= count

    def deletion_observed(self, key: str, uid: str) -> None:
        exp = self._by_key.get(key)
        if exp is not None:
            exp.deletes.discard(uid)

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        exp = self._by_key.get(key)
        return (max(0, exp.adds), len(exp.deletes)) if exp else (0, 0)
