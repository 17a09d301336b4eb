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

Names: a ReplicaSet is `<deployment>-<pod-template-hash>`; the hash is a stable function of the
pod template (and `status.collisionCount`), and the label `pod-template-hash` is added to the
ReplicaSet's selector and template so the ReplicaSets of one Deployment never share pods.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from api.apps import (
    Deployment,
    DeploymentCondition,
    DeploymentStatus,
    ReplicaSet,
    ReplicaSetSpec,
)
from api.base import IntOrString
from api.core import PodTemplateSpec
from api.meta import LabelSelector, ObjectMeta, OwnerReference

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
DEFAULT_PROGRESS_DEADLINE = 600
DEFAULT_HISTORY_LIMIT = 10
# Deployment annotations that describe the Deployment itself, not its ReplicaSets.
_NOT_COPIED = frozenset({"kubectl.kubernetes.io/last-applied-configuration", REVISION})
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # no vowels: a hash never spells a word


# ---------------------------------------------------------------- naming and templates


def _fnv1a32(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def pod_template_hash(template: PodTemplateSpec, collision_count: int | None = None) -> str:
    """A short, stable name suffix for a pod template: equal templates give equal hashes."""
    data = template_key(template)
    if collision_count:
        data += f"/{collision_count}"
    value = _fnv1a32(data.encode())
    out = ""
    while True:
        value, digit = divmod(value, len(_ALPHABET))
        out += _ALPHABET[digit]
        if value == 0:
            return out


def template_key(template: PodTemplateSpec) -> str:
    """Canonical form of a template without the pod-template-hash label, for comparisons."""
    data = template.to_dict()
    labels = (data.get("metadata") or {}).get("labels")
    if labels and HASH_LABEL in labels:
        labels = {k: v for k, v in labels.items() if k != HASH_LABEL}
        data["metadata"]["labels"] = labels
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def revision(rs: ReplicaSet) -> int:
    try:
        return int((rs.metadata.annotations or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def find_new(deployment: Deployment, rss: Sequence[ReplicaSet]) -> ReplicaSet | None:
    """The ReplicaSet whose template equals the Deployment's (oldest wins, as in Kubernetes)."""
    want = template_key(deployment.spec.template)
    same = [rs for rs in rss if rs.spec.template is not None and template_key(rs.spec.template) == want]
    same.sort(key=lambda rs: (rs.metadata.creation_timestamp is None, str(rs.metadata.creation_timestamp),
                              rs.metadata.name or ""))
    return same[0] if same else None


def new_replica_set(deployment: Deployment, *, replicas: int, revision_number: int,
                    max_surge: int) -> ReplicaSet:
    """The ReplicaSet object to create for the Deployment's current template."""
    status = deployment.status or DeploymentStatus()
    tmpl = deployment.spec.template.copy_deep()
    phash = pod_template_hash(deployment.spec.template, status.collision_count)
    meta = tmpl.metadata or ObjectMeta()
    meta.labels = {**(meta.labels or {}), HASH_LABEL: phash}
    tmpl.metadata = meta
    sel = deployment.spec.selector.copy_deep()
    sel.match_labels = {**(sel.match_labels or {}), HASH_LABEL: phash}
    desired = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    return ReplicaSet(
        metadata=ObjectMeta(
            name=f"{deployment.metadata.name}-{phash}",
            namespace=deployment.metadata.namespace,
            labels=dict(meta.labels),
            annotations={
                **{k: v for k, v in (deployment.metadata.annotations or {}).items() if k not in _NOT_COPIED},
                REVISION: str(revision_number),
                DESIRED_REPLICAS: str(desired),
                MAX_REPLICAS: str(desired + max_surge),
            },
            owner_references=[owner_ref(deployment)],
        ),
        spec=ReplicaSetSpec(replicas=replicas, min_ready_seconds=deployment.spec.min_ready_seconds or 0,
                            selector=sel, template=tmpl),
    )


def owner_ref(deployment: Deployment) -> OwnerReference:
    return OwnerReference(api_version="apps/v1", kind="Deployment", name=deployment.metadata.name or "",
                          uid=deployment.metadata.uid or "", controller=True, block_owner_deletion=True)


# ---------------------------------------------------------------- surge and unavailable


def _scaled(value: IntOrString | None, total: int, *, default: str, round_up: bool) -> int:
    if value is None:
        value = default
    if isinstance(value, int):
        return value
    text = value.strip()
    if not text.endswith("%"):
        return int(text)
    exact = int(text[:-1]) * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def resolve_fenceposts(max_surge: IntOrString | None, max_unavailable: IntOrString | None,
                       replicas: int) -> tuple[int, int]:
    """(surge, unavailable) as absolute counts: percentages of `replicas`, surge rounded up and
    unavailable rounded down; both zero would deadlock a rollout, so unavailable becomes 1."""
    surge = _scaled(max_surge, replicas, default="25%", round_up=True)
    unavailable = _scaled(max_unavailable, replicas, default="25%", round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas) if replicas > 0 else unavailable


def fenceposts(deployment: Deployment) -> tuple[int, int]:
    replicas = desired_replicas(deployment)
    strategy = deployment.spec.strategy
    if strategy is not None and strategy.type == "Recreate":
        return 0, replicas
    ru = strategy.rolling_update if strategy else None
    return resolve_fenceposts(ru.max_surge if ru else None, ru.max_unavailable if ru else None, replicas)


def desired_replicas(deployment: Deployment) -> int:
    return deployment.spec.replicas if deployment.spec.replicas is not None else 1


# ---------------------------------------------------------------- counting


def spec_replicas(rs: ReplicaSet) -> int:
    return rs.spec.replicas if rs.spec.replicas is not None else 1


def pod_count(rs: ReplicaSet) -> int:
    """Pods this ReplicaSet has or is about to have: its spec, or more while it scales down."""
    actual = rs.status.replicas if rs.status else 0
    return max(spec_replicas(rs), actual)


def available(rs: ReplicaSet) -> int:
    return (rs.status.available_replicas or 0) if rs.status else 0


def kept_available(rs: ReplicaSet) -> int:
    """Available pods that will survive the ReplicaSet's pending scale-down, if any: the
    ReplicaSet controller may not have deleted the surplus yet, so the status overstates."""
    return min(available(rs), spec_replicas(rs))


def observed(rs: ReplicaSet) -> bool:
    """Whether the ReplicaSet's status describes its current spec."""
    gen = rs.metadata.generation
    return gen is None or (rs.status is not None and (rs.status.observed_generation or 0) >= gen)


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
    out.requeue_after = _deadline_requeue(deployment, out.status, now)
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


# ---------------------------------------------------------------- status and conditions


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


def _deadline_requeue(deployment: Deployment, status: DeploymentStatus, now: datetime) -> float | None:
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


def selector_with_hash(selector: LabelSelector, phash: str) -> LabelSelector:
    sel = selector.copy_deep()
    sel.match_labels = {**(sel.match_labels or {}), HASH_LABEL: phash}
    return sel


# ---------------------------------------------------------------- rollback (for `rollout undo`)


class RollbackError(ValueError):
    """No ReplicaSet holds the revision asked for."""


def rollback_template(deployment: Deployment, rss: Sequence[ReplicaSet], *, to_revision: int = 0) -> PodTemplateSpec:
    """The template `rollout undo` puts back: that of the ReplicaSet with revision
    `to_revision`, or (0) the newest revision older than the current one, without its
    pod-template-hash label. Patching it into `spec.template` is the whole rollback: the
    controller then finds that ReplicaSet again and makes it the newest revision."""
    owned = [rs for rs in rss if (ref := rs.metadata.controller_ref()) is not None
             and ref.uid == deployment.metadata.uid and rs.spec.template is not None]
    current = int((deployment.metadata.annotations or {}).get(REVISION, "0") or 0)
    if to_revision:
        match = [rs for rs in owned if revision(rs) == to_revision]
        if not match:
            raise RollbackError(f"unable to find specified revision {to_revision} in history")
    else:
        # "Previous" is the newest revision below the current one.
        match = sorted((rs for rs in owned if 0 < revision(rs) < current), key=revision)[-1:]
        if not match:
            raise RollbackError("no rollout history found")
    assert match[0].spec.template is not None
    tmpl = match[0].spec.template.copy_deep()
    if tmpl.metadata is not None and tmpl.metadata.labels:
        tmpl.metadata.labels = {k: v for k, v in tmpl.metadata.labels.items() if k != HASH_LABEL} or None
    return tmpl
