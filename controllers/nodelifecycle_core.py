"""Node health, pure: from the last heartbeat this controller *observed* (a Lease renewal or a
Ready heartbeat, timed with the controller's clock so that node clock skew does not matter),
decide the node's Ready condition, its taints and which of its pods to evict.

Rules:
- no heartbeat observed for longer than `grace`: every condition becomes Unknown
  ("Kubelet stopped posting node status."), and the node is tainted
  `node.kubernetes.io/unreachable` NoSchedule and NoExecute;
- Ready=False reported by the kubelet: tainted `node.kubernetes.io/not-ready` likewise;
- no heartbeat: the node's Ready pods are marked Ready=False (nobody vouches for them);
- Ready=True: neither taint. The kubelet itself writes Ready again when it comes back.
- A pod on a node carrying a NoExecute taint is evicted once the taint is older than the pod's
  tolerationSeconds for it, or `eviction_timeout` if it has no matching toleration; a pod that
  tolerates the taint with no tolerationSeconds stays forever. Pods already being deleted are
  left alone, and so are the pods of a node whose heartbeat is back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from api.core import Node, NodeCondition, Pod, Taint, Toleration
from controllers.podutil import is_ready

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
_OURS = (UNREACHABLE, NOT_READY)


@dataclass
class NodeDecision:
    conditions: list[NodeCondition] | None = None  # new conditions to write, None: unchanged
    taints: list[Taint] | None = None  # new taint list, None: unchanged
    evict: list[Pod] = field(default_factory=list)
    mark_not_ready: list[Pod] = field(default_factory=list)  # Ready pods on an unreachable node
    became_unreachable: bool = False
    requeue_after: float | None = None


def _ready(node: Node) -> NodeCondition | None:
    return node.status.condition("Ready") if node.status else None


def decide(node: Node, pods: Sequence[Pod], *, last_heartbeat: datetime, now: datetime, grace: float,
           eviction_timeout: float) -> NodeDecision:
    out = NodeDecision()
    ready = _ready(node)
    stale = (now - last_heartbeat).total_seconds() > grace
    status = ready.status if ready is not None else "Unknown"
    if stale and (ready is None or status != "Unknown"):
        out.became_unreachable = True
        out.conditions = _all_unknown(node, now)
        status = "Unknown"
    elif not stale:
        out.requeue_after = max(0.5, grace - (now - last_heartbeat).total_seconds())

    key = UNREACHABLE if status == "Unknown" else NOT_READY if status == "False" else None
    if ready is None and not stale:
        key = None  # a kubelet that registered but has not posted its status yet
    current = list(node.spec.taints or []) if node.spec else []
    kept = [t for t in current if t.key not in _OURS or (t.key == key)]
    for effect in ("NoSchedule", "NoExecute"):
        if key is not None and not any(t.key == key and t.effect == effect for t in kept):
            kept.append(Taint(key=key, effect=effect, time_added=now))
    if [t.to_dict() for t in kept] != [t.to_dict() for t in current]:
        out.taints = kept

    # A node whose Lease is fresh again but whose kubelet has not re-posted Ready yet is
    # coming back: its pods are not evicted meanwhile.
    failing = stale or status == "False"
    no_execute = [t for t in kept if t.effect == "NoExecute" and t.key in _OURS] if failing else []
    if stale:
        # Nobody can vouch for these pods any more: stop counting them as available.
        out.mark_not_ready = [p for p in pods if p.metadata.deletion_timestamp is None and is_ready(p)]
    for pod in pods:
        if pod.metadata.deletion_timestamp is not None or not no_execute:
            continue
        wait = _eviction_wait(pod, no_execute, now=now, eviction_timeout=eviction_timeout)
        if wait is None:
            continue
        if wait <= 0:
            out.evict.append(pod)
        else:
            out.requeue_after = wait if out.requeue_after is None else min(out.requeue_after, wait)
    return out


def _all_unknown(node: Node, now: datetime) -> list[NodeCondition]:
    conds = [c.copy_deep() for c in (node.status.conditions if node.status else None) or []]
    if not any(c.type == "Ready" for c in conds):
        conds.append(NodeCondition(type="Ready", status="Unknown"))
    for c in conds:
        if c.status != "Unknown":
            c.last_transition_time = now
        c.status = "Unknown"
        c.reason = "NodeStatusUnknown"
        c.message = "Kubelet stopped posting node status."
    return conds


def _tolerates(tol: Toleration, taint: Taint) -> bool:
    if tol.effect and tol.effect != taint.effect:
        return False
    if tol.operator == "Exists":
        return tol.key in (None, "", taint.key)
    return tol.key == taint.key and (tol.value or "") == (taint.value or "")


def _eviction_wait(pod: Pod, taints: Sequence[Taint], *, now: datetime,
                   eviction_timeout: float) -> float | None:
    """Seconds until the pod must go (<= 0: now), None if it tolerates the taints forever."""
    deadline: datetime | None = None
    for taint in taints:
        added = taint.time_added or now
        seconds: float | None = eviction_timeout
        for tol in pod.spec.tolerations or []:
            if _tolerates(tol, taint):
                seconds = tol.toleration_seconds if tol.toleration_seconds is not None else None
                break
        if seconds is None:
            continue
        at = added + timedelta(seconds=seconds)
        deadline = at if deadline is None else min(deadline, at)
    return None if deadline is None else (deadline - now).total_seconds()
