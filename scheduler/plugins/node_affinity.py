"""Filter and score: nodeSelector and node affinity.

Filter: the node's labels must carry every `nodeSelector` pair AND match the
required node affinity (its terms are ORed; within a term, every expression and
field requirement must hold; a term with no requirement matches nothing). Reason,
worded as Kubernetes does: "node(s) didn't match Pod's node affinity/selector".

Score: the sum of the weights of the preferred terms the node matches, scaled so the
best node gets 100.

Operators: In, NotIn, Exists, DoesNotExist, Gt, Lt (integers; a label that is not an
integer never matches). `matchFields` supports `metadata.name` with In and NotIn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from api.core import NodeSelectorRequirement, NodeSelectorTerm
from scheduler.framework import BasePlugin, CycleState, Reasons, Snapshot, normalize_to_max
from scheduler.nodeinfo import NodeInfo

__all__ = ["REASON", "NodeAffinity", "requirement_matches", "term_matches"]

REASON = "node(s) didn't match Pod's node affinity/selector"

NodeMatcher = Callable[[NodeInfo], bool]


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def requirement_matches(req: NodeSelectorRequirement, labels: Mapping[str, str]) -> bool:
    values = req.values or []
    present = req.key in labels
    op = req.operator
    if op == "In":
        return present and labels[req.key] in values
    if op == "NotIn":
        return not present or labels[req.key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(values) == 1:
        have, want = _as_int(labels[req.key]), _as_int(values[0])
        if have is None or want is None:
            return False
        return have > want if op == "Gt" else have < want
    return False  # an unknown operator matches nothing, as Kubernetes treats a parse error


def _field_matches(req: NodeSelectorRequirement, node_name: str) -> bool:
    if req.key != "metadata.name":
        return False
    return requirement_matches(req, {"metadata.name": node_name})


def term_matches(term: NodeSelectorTerm, node: NodeInfo, *, empty_matches: bool = False) -> bool:
    expressions = term.match_expressions or []
    fields = term.match_fields or []
    if not expressions and not fields:
        return empty_matches
    return all(requirement_matches(r, node.labels) for r in expressions) and all(
        _field_matches(r, node.name) for r in fields
    )


def _required_matcher(selector: Mapping[str, str], terms: Sequence[NodeSelectorTerm] | None) -> NodeMatcher:
    pairs = tuple(selector.items())

    def matches(node: NodeInfo) -> bool:
        labels = node.labels
        if any(labels.get(k) != v for k, v in pairs):
            return False
        return terms is None or any(term_matches(t, node) for t in terms)

    return matches


class NodeAffinity(BasePlugin):
    name = "NodeAffinity"

    def prepare(self, state: CycleState, snapshot: Snapshot) -> None:
        spec = state.pod.pod.spec
        affinity = spec.affinity.node_affinity if spec.affinity else None
        required = affinity.required_during_scheduling_ignored_during_execution if affinity else None
        terms = required.node_selector_terms if required is not None else None
        if spec.node_selector or terms is not None:
            state.data[self.name] = _required_matcher(spec.node_selector or {}, terms)
        else:
            state.skip_filter.add(self.name)
        preferred = affinity.preferred_during_scheduling_ignored_during_execution if affinity else None
        state.data[self.name + "/preferred"] = preferred or []
        if not preferred:
            state.skip_score.add(self.name)

    def filter(self, state: CycleState, node: NodeInfo) -> Reasons:
        matcher: NodeMatcher | None = state.data.get(self.name)
        if matcher is None or matcher(node):
            return ()
        return (REASON,)

    def score(self, state: CycleState, node: NodeInfo) -> int:
        return sum(
            p.weight
            for p in state.data[self.name + "/preferred"]
            if term_matches(p.preference, node, empty_matches=True)
        )

    def normalize(self, scores: list[int]) -> list[int]:
        return normalize_to_max(scores)
