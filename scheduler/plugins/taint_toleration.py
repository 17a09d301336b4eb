"""Filter and score: taints against tolerations.

Filter: a node with a NoSchedule or NoExecute taint the pod does not tolerate is
rejected, naming the first such taint as Kubernetes does:
"node(s) had untolerated taint {key: value}".
Score: fewer untolerated PreferNoSchedule taints is better.

Toleration matching (Kubernetes' rules): an empty effect matches every effect; an
empty key with operator Exists matches every taint; Exists ignores the value; Equal
(or no operator) needs the values equal.
"""

from __future__ import annotations

from collections.abc import Iterable

from api.core import Taint, Toleration
from scheduler.framework import BasePlugin, CycleState, Reasons, Snapshot, normalize_to_max
from scheduler.nodeinfo import NodeInfo

__all__ = ["TaintToleration", "taint_reason", "tolerates", "toleration_matches"]

_FILTERED_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


def toleration_matches(toleration: Toleration, taint: Taint) -> bool:
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    operator = toleration.operator or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        # An Equal toleration needs a key (validation enforces it); values compare as "" when unset.
        return bool(toleration.key) and (toleration.value or "") == (taint.value or "")
    return False


def tolerates(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    return any(toleration_matches(t, taint) for t in tolerations)


def taint_reason(taint: Taint) -> str:
    return f"node(s) had untolerated taint {{{taint.key}: {taint.value or ''}}}"


class TaintToleration(BasePlugin):
    name = "TaintToleration"

    def prepare(self, state: CycleState, snapshot: Snapshot) -> None:
        # One pass over the nodes here saves two calls per node below in the
        # common cluster where few nodes carry taints.
        tainted = [n for n in snapshot.nodes if n.taints]
        if not tainted:
            state.skip_filter.add(self.name)
        if not any(t.effect == "PreferNoSchedule" for n in tainted for t in n.taints):
            state.skip_score.add(self.name)

    def filter(self, state: CycleState, node: NodeInfo) -> Reasons:
        if not node.taints:
            return ()
        tolerations = state.pod.pod.spec.tolerations or []
        for taint in node.taints:
            if taint.effect in _FILTERED_EFFECTS and not tolerates(tolerations, taint):
                return (taint_reason(taint),)
        return ()

    def score(self, state: CycleState, node: NodeInfo) -> int:
        tolerations = state.pod.pod.spec.tolerations or []
        return sum(
            1 for t in node.taints if t.effect == "PreferNoSchedule" and not tolerates(tolerations, t)
        )

    def normalize(self, scores: list[int]) -> list[int]:
        return normalize_to_max(scores, reverse=True)
