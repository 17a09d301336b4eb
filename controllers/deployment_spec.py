"""What a Deployment and its ReplicaSets say, read the same way everywhere: the annotations,
the pod-template hash that names ReplicaSets, revisions, surge and unavailability as counts,
and how many pods a ReplicaSet has or is about to have. Pure functions of the objects.

Names: a ReplicaSet is `<deployment>-<pod-template-hash>`; the hash is a stable function of the
pod template (and `status.collisionCount`), and the label `pod-template-hash` is added to the
ReplicaSet's selector and template so the ReplicaSets of one Deployment never share pods.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from api.apps import Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec
from api.base import IntOrString
from api.core import PodTemplateSpec
from api.meta import ObjectMeta, OwnerReference

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
    """Canonical form of a template without the pod-template-hash label, for comparisons.

    Empty values count as absent, as in Kubernetes' semantic equality: `kubectl rollout undo`
    sends the old template back with Go's zero values filled in (`resources: {}`), and that
    must still find the old ReplicaSet rather than make a new one."""
    data = _without_empty(template.to_dict())
    labels = (data.get("metadata") or {}).get("labels")
    if labels and HASH_LABEL in labels:
        labels = {k: v for k, v in labels.items() if k != HASH_LABEL}
        data["metadata"]["labels"] = labels
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _without_empty(value: Any) -> Any:
    if isinstance(value, dict):
        pruned = {k: _without_empty(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value


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
