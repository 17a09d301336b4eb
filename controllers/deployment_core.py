"""The Deployment controller's decisions, pure: given a Deployment, the ReplicaSets it owns and
the time, say which ReplicaSet to create, how to scale each one, which old ones to delete, and
what status to report.

One call of `plan` is one step of a rollout, like one sync of Kubernetes' controller; the
controller applies the step, the informers report back, and the next sync takes the next step.

Rolling update invariants (with surge, unavailable = `resolve_fenceposts(...)`):
- scale-ups of the new ReplicaSet never make the pods of all ReplicaSets exceed
  `replicas + surge` (each ReplicaSet counts max(spec.replicas, status.replicas), so pods that
  the ReplicaSet controller has not deleted yet still count);
- scale-downs of old ReplicaSets never take availability below `replicas - unavailable`:
  they first remove unavailable old pods, then only as many available ones as the surplus
  over that floor.
Recreate: scale every old ReplicaSet to zero, wait until their pods are gone, then scale the new
one up. A change of `replicas` mid-rollout is spread over the active ReplicaSets in proportion to
their size (their max-replicas annotation says what size they were scaled for).

Reading the objects (names, hashes, revisions, fenceposts) is in `deployment_spec`, the status
and conditions in `deployment_status`; both are re-exported here as the one facade the
controller and the tests use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from api.apps import Deployment, DeploymentStatus, ReplicaSet
from controllers.deployment_spec import (
    DEFAULT_HISTORY_LIMIT,
    DESIRED_REPLICAS,
    HASH_LABEL,
    MAX_REPLICAS,
    REVISION,
    RollbackError,
    available,
    desired_replicas,
    fenceposts,
    find_new,
    kept_available,
    new_replica_set,
    observed,
    owner_ref,
    pod_count,
    pod_template_hash,
    resolve_fenceposts,
    revision,
    rollback_template,
    spec_replicas,
    template_key,
)
from controllers.deployment_status import compute_status, deadline_requeue, is_complete

__all__ = [
    "DESIRED_REPLICAS", "HASH_LABEL", "MAX_REPLICAS", "REVISION", "DeploymentStatus", "Plan", "RollbackError",
    "available", "compute_status", "desired_replicas", "fenceposts", "find_new", "history_to_delete",
    "is_complete", "new_replica_set", "owner_ref", "plan", "pod_count", "pod_template_hash", "resolve_fenceposts",
    "revision", "rollback_template", "spec_replicas", "template_key",
]

# ---------------------------------------------------------------- planning


@dataclass
class Plan:
    """One step: create `create`, then set replicas per `scale` (name -> count) and the
    annotations per `annotate` (name -> annotations to merge), delete `delete`, write `status`
    and the Deployment's revision annotation `revision` (None: leave it)."""

    create: ReplicaSet | None = None
    scale: dict[str, int] = field(default_factory=dict)
    annotate: dict[str, dict[str, str]] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    status: DeploymentStatus = field(default_factory=DeploymentStatus)
    revision: str | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    requeue_after: float | None = None


def plan(deployment: Deployment, rss: Sequence[ReplicaSet], *, now: datetime) -> Plan:
    """One rollout step for `deployment` over the ReplicaSets it controls (`rss`)."""
    out = Plan()
    replicas = desired_replicas(deployment)
    surge, unavailable = fenceposts(deployment)
    new = find_new(deployment, rss)
    old = [rs for rs in rss if new is None or rs.metadata.name != new.metadata.name]
    max_rev = max((revision(rs) for rs in old), default=0)
    paused = bool(deployment.spec.paused)

    created = False
    if new is None and not paused:
        recreate = _is_recreate(deployment)
        start = 0 if recreate and any(pod_count(rs) > 0 for rs in old) else _initial_new(replicas, surge, old)
        new = new_replica_set(deployment, replicas=start, revision_number=max_rev + 1, max_surge=surge)
        out.create = new
        created = True
        out.events.append(("Normal", "ScalingReplicaSet",
                           f"Scaled up replica set {new.metadata.name} from 0 to {start}"))
    elif new is not None and revision(new) <= max_rev:
        # The template went back to an older ReplicaSet (rollback): it becomes the newest revision.
        out.annotate.setdefault(new.metadata.name or "", {})[REVISION] = str(max_rev + 1)

    if new is not None:
        new_rev = max_rev + 1 if created or revision(new) <= max_rev else revision(new)
        out.revision = str(new_rev)
        if paused:
            _scale_paused(deployment, new, old, out)
        elif _is_recreate(deployment):
            _recreate_step(deployment, new, old, out, created=created)
        elif not created and _is_scaling_event(deployment, new, old):
            _scale_proportionally(deployment, new, old, out, surge=surge)
        else:
            _rolling_step(deployment, new, old, out, surge=surge, unavailable=unavailable, created=created)
        active = {rs.metadata.name for rs in [new, *old] if spec_replicas(rs) > 0}
        for rs in [new, *old]:
            name = rs.metadata.name or ""
            ann = rs.metadata.annotations or {}
            want = {DESIRED_REPLICAS: str(replicas), MAX_REPLICAS: str(replicas + surge)}
            if (name in out.scale or name in active) and any(ann.get(k) != v for k, v in want.items()):
                out.annotate.setdefault(name, {}).update(want)

    effective = _apply_scale(rss if out.create is None else [*rss, out.create], out.scale)
    new_name = new.metadata.name if new is not None else None
    new_eff = next((rs for rs in effective if new_name is not None and rs.metadata.name == new_name), None)
    out.status = compute_status(deployment, effective, new_eff, now=now, created=created, paused=paused)
    if new_eff is not None and not paused and is_complete(deployment, out.status):
        out.delete = history_to_delete(deployment, [rs for rs in effective if rs is not new_eff])
    out.requeue_after = deadline_requeue(deployment, out.status, now)
    return out


def _is_recreate(deployment: Deployment) -> bool:
    return deployment.spec.strategy is not None and deployment.spec.strategy.type == "Recreate"


def _initial_new(replicas: int, surge: int, old: Sequence[ReplicaSet]) -> int:
    if not old:
        return replicas
    room = replicas + surge - sum(pod_count(rs) for rs in old)
    return max(0, min(replicas, room))


def _scale(out: Plan, rs: ReplicaSet, to: int) -> None:
    frm = spec_replicas(rs)
    if to == frm:
        return
    out.scale[rs.metadata.name or ""] = to
    verb = "up" if to > frm else "down"
    out.events.append(("Normal", "ScalingReplicaSet", f"Scaled {verb} replica set {rs.metadata.name} "
                       f"from {frm} to {to}"))


def _rolling_step(deployment: Deployment, new: ReplicaSet, old: Sequence[ReplicaSet], out: Plan, *,
                  surge: int, unavailable: int, created: bool) -> None:
    replicas = desired_replicas(deployment)
    if created:
        return
    # Scale the new ReplicaSet up as far as the surge allows.
    cur = spec_replicas(new)
    if cur > replicas:
        _scale(out, new, replicas)
        return
    if cur < replicas:
        total = sum(pod_count(rs) for rs in [new, *old])
        room = replicas + surge - total
        if room > 0:
            _scale(out, new, cur + min(room, replicas - cur))
            return
    # Scale old ReplicaSets down as far as availability allows.
    active_old = [rs for rs in old if spec_replicas(rs) > 0]
    if not active_old:
        return
    min_available = replicas - unavailable
    total_pods = sum(pod_count(rs) for rs in [new, *old])
    new_unavailable = max(0, spec_replicas(new) - kept_available(new))
    budget = total_pods - min_available - new_unavailable
    if budget <= 0:
        return
    # First the unavailable pods of old ReplicaSets: removing them costs no availability.
    targets: dict[str, int] = {rs.metadata.name or "": spec_replicas(rs) for rs in active_old}
    for rs in sorted(active_old, key=_age_key):
        if budget <= 0:
            break
        unhealthy = spec_replicas(rs) - kept_available(rs)
        cut = min(unhealthy, budget)
        targets[rs.metadata.name or ""] -= cut
        budget -= cut
    # Then available ones, oldest ReplicaSet first, only down to the availability floor.
    total_available = sum(kept_available(rs) for rs in [new, *old])
    surplus = total_available - min_available
    for rs in sorted(active_old, key=_age_key):
        name = rs.metadata.name or ""
        if surplus <= 0:
            break
        cut = min(targets[name], surplus)
        targets[name] -= cut
        surplus -= cut
    for rs in active_old:
        _scale(out, rs, targets[rs.metadata.name or ""])


def _is_scaling_event(deployment: Deployment, new: ReplicaSet, old: Sequence[ReplicaSet]) -> bool:
    """`replicas` changed while several ReplicaSets are active (mid-rollout): the active ones
    still carry the desired-replicas annotation of the size they were scaled for."""
    active = [rs for rs in [new, *old] if spec_replicas(rs) > 0]
    if len(active) < 2:
        return False
    want = str(desired_replicas(deployment))
    return any((rs.metadata.annotations or {}).get(DESIRED_REPLICAS, want) != want for rs in active)


def _scale_proportionally(deployment: Deployment, new: ReplicaSet, old: Sequence[ReplicaSet], out: Plan, *,
                          surge: int) -> None:
    """Spread a change of `replicas` over the active ReplicaSets in proportion to their size,
    as Kubernetes does, so that scaling mid-rollout neither restarts nor finishes the rollout."""
    replicas = desired_replicas(deployment)
    allowed = replicas + surge if replicas > 0 else 0
    active = [rs for rs in [new, *old] if spec_replicas(rs) > 0]
    to_add = allowed - sum(spec_replicas(rs) for rs in [new, *old])
    if to_add == 0:
        return
    # Growing: largest first, newer on ties; shrinking: smallest first, newer on ties. The
    # first one also takes the rounding leftovers.
    if to_add > 0:
        order = sorted(active, key=lambda rs: (-spec_replicas(rs), -revision(rs)))
    else:
        order = sorted(active, key=lambda rs: (spec_replicas(rs), -revision(rs)))
    sizes = {rs.metadata.name or "": spec_replicas(rs) for rs in active}
    added = 0
    for rs in order:
        name = rs.metadata.name or ""
        fraction = _fraction(deployment, rs, allowed)
        room = to_add - added
        change = min(fraction, room) if to_add > 0 else max(fraction, room)
        sizes[name] += change
        added += change
    first = order[0].metadata.name or ""
    sizes[first] = max(0, sizes[first] + to_add - added)  # rounding leftovers go to the largest
    for rs in active:
        _scale(out, rs, max(0, sizes[rs.metadata.name or ""]))


def _fraction(deployment: Deployment, rs: ReplicaSet, allowed: int) -> int:
    """How much `rs` should grow (or shrink) so its share of the new size equals its share of
    the size it was last scaled for (its max-replicas annotation)."""
    if desired_replicas(deployment) == 0:
        return -spec_replicas(rs)
    try:
        annotated = int((rs.metadata.annotations or {}).get(MAX_REPLICAS, "0"))
    except ValueError:
        annotated = 0
    if annotated <= 0:
        annotated = (deployment.status.replicas or 0) if deployment.status else 0
    if annotated <= 0:
        return 0
    # Half away from zero, like Go's math.Round (Python's round() rounds half to even).
    return math.floor(spec_replicas(rs) * allowed / annotated + 0.5) - spec_replicas(rs)


def _recreate_step(deployment: Deployment, new: ReplicaSet, old: Sequence[ReplicaSet], out: Plan, *,
                   created: bool) -> None:
    active_old = [rs for rs in old if spec_replicas(rs) > 0]
    if active_old:
        for rs in active_old:
            _scale(out, rs, 0)
        return
    if any(not observed(rs) or (rs.status is not None and (rs.status.replicas or 0) > 0) for rs in old):
        return  # old pods still exist: wait until every one is gone
    if any((rs.status.terminating_replicas or 0) > 0 for rs in old if rs.status):
        return
    if not created:
        _scale(out, new, desired_replicas(deployment))
    elif out.create is not None and spec_replicas(out.create) != desired_replicas(deployment):
        out.create.spec.replicas = desired_replicas(deployment)


def _scale_paused(deployment: Deployment, new: ReplicaSet, old: Sequence[ReplicaSet], out: Plan) -> None:
    """A paused Deployment still follows `replicas` when it is not mid-rollout."""
    if all(spec_replicas(rs) == 0 for rs in old):
        _scale(out, new, desired_replicas(deployment))


def _age_key(rs: ReplicaSet) -> tuple[int, str, str]:
    return (revision(rs), str(rs.metadata.creation_timestamp), rs.metadata.name or "")


def _apply_scale(rss: Sequence[ReplicaSet], scale: dict[str, int]) -> list[ReplicaSet]:
    out: list[ReplicaSet] = []
    for rs in rss:
        if rs.metadata.name in scale:
            spec = rs.spec.model_copy(update={"replicas": scale[rs.metadata.name or ""]})
            rs = rs.model_copy(update={"spec": spec})
        out.append(rs)
    return out


def history_to_delete(deployment: Deployment, old: Sequence[ReplicaSet]) -> list[str]:
    """Old, fully scaled-down ReplicaSets beyond revisionHistoryLimit, oldest first."""
    limit = deployment.spec.revision_history_limit
    limit = DEFAULT_HISTORY_LIMIT if limit is None else limit
    idle = [rs for rs in old if spec_replicas(rs) == 0 and observed(rs)
            and (rs.status is None or rs.status.replicas == 0) and rs.metadata.deletion_timestamp is None]
    idle.sort(key=_age_key)
    return [rs.metadata.name or "" for rs in idle[: max(0, len(idle) - limit)]]
