"""The scheduling pipeline: filter -> score -> select, a pure function over a snapshot.

    schedule(snapshot, pod, profile)
      1. prepare   every plugin precomputes what it needs from the pod (and the
                   snapshot) once, into the CycleState, and may declare that it has
                   nothing to check or score for this pod (no host ports, no
                   affinity...), which takes it out of the per-node loops;
      2. filter    each node runs the filters in profile order, cheap ones first; the
                   first filter that rejects a node records its reasons and the rest
                   are skipped for that node;
      3. score     each feasible node gets, per score plugin, a raw score that the
                   plugin normalises to 0..MAX_NODE_SCORE over all feasible nodes;
                   the total is the weighted sum;
      4. select    the highest total wins; among equal totals a stable hash of the
                   pod picks one, which spreads equal pods without any randomness.

Nothing here does I/O, reads a clock or draws a random number: the same snapshot,
pod and profile always give the same answer, which is what lets the unit tests
check properties such as "the chosen node passes every filter".

A failed pod gets a `FitError` whose message is Kubernetes': the per-node reasons
are counted, each count printed before its reason, and the strings sorted, e.g.
"0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector,
2 Insufficient cpu."
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from scheduler.nodeinfo import NodeInfo, PodInfo

__all__ = [
    "MAX_NODE_SCORE",
    "NO_NODES_MESSAGE",
    "CycleState",
    "FilterPlugin",
    "FitError",
    "Plugin",
    "Profile",
    "Reasons",
    "ScheduleResult",
    "ScorePlugin",
    "Snapshot",
    "WeightedScorer",
    "schedule",
]

MAX_NODE_SCORE = 100
NO_NODES_MESSAGE = "no nodes available to schedule pods"

# A filter's verdict on one node: empty means the pod fits; otherwise one or more
# human-readable reasons, worded as Kubernetes words them so messages match.
Reasons = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The nodes a scheduling cycle may choose from, in a fixed order.

    Built by the cache from immutable NodeInfos, so it cannot change while a cycle
    runs, and the pipeline never changes it.
    """

    nodes: tuple[NodeInfo, ...] = ()

    def get(self, name: str) -> NodeInfo | None:
        for info in self.nodes:
            if info.name == name:
                return info
        return None


@dataclass(slots=True)
class CycleState:
    """Per-pod scratch space: plugins store what they precompute under their name.

    A plugin whose verdict cannot depend on the node for this pod (it would pass, or
    score equally, everywhere) adds its name to `skip_filter` / `skip_score`.
    """

    pod: PodInfo
    data: dict[str, Any] = field(default_factory=dict)
    skip_filter: set[str] = field(default_factory=set)
    skip_score: set[str] = field(default_factory=set)


class Plugin(Protocol):
    name: str

    def prepare(self, state: CycleState, snapshot: Snapshot) -> None:
        """Precompute from the pod (once per cycle) what filter/score read per node."""


class FilterPlugin(Plugin, Protocol):
    def filter(self, state: CycleState, node: NodeInfo) -> Reasons:
        """() if the pod fits this node, else the reasons it does not."""


class ScorePlugin(Plugin, Protocol):
    def score(self, state: CycleState, node: NodeInfo) -> int:
        """A raw score for a feasible node; higher is better."""

    def score_all(self, state: CycleState, nodes: Sequence[NodeInfo]) -> list[int]:
        """`score` for each node, in order (plugins on the hot path inline it)."""

    def normalize(self, scores: list[int]) -> list[int]:
        """Map the raw scores of all feasible nodes onto 0..MAX_NODE_SCORE."""


class BasePlugin:
    """Defaults for the optional hooks."""

    name: str = ""

    def prepare(self, state: CycleState, snapshot: Snapshot) -> None:
        return None

    def normalize(self, scores: list[int]) -> list[int]:
        return scores

    def score(self, state: CycleState, node: NodeInfo) -> int:
        return 0

    def score_all(self, state: CycleState, nodes: Sequence[NodeInfo]) -> list[int]:
        return [self.score(state, node) for node in nodes]


def normalize_to_max(scores: list[int], *, reverse: bool = False) -> list[int]:
    """Scale so the best raw score becomes MAX_NODE_SCORE (or, reversed, the lowest)."""
    top = max(scores, default=0)
    if top == 0:
        return [MAX_NODE_SCORE if reverse else 0 for _ in scores]
    scaled = [MAX_NODE_SCORE * s // top for s in scores]
    return [MAX_NODE_SCORE - s for s in scaled] if reverse else scaled


@dataclass(frozen=True, slots=True)
class WeightedScorer:
    plugin: ScorePlugin
    weight: int


@dataclass(frozen=True, slots=True)
class Profile:
    """Which plugins run, in which order (filters) and with which weight (scores)."""

    filters: tuple[FilterPlugin, ...]
    scorers: tuple[WeightedScorer, ...] = ()
    name: str = "default-scheduler"


@dataclass(frozen=True, slots=True)
class FitError:
    """Why a pod fits no node: each rejected node's reasons, keyed by node name."""

    num_nodes: int
    diagnosis: Mapping[str, Reasons]

    def histogram(self) -> Counter[str]:
        return Counter(reason for reasons in self.diagnosis.values() for reason in reasons)

    @property
    def message(self) -> str:
        if self.num_nodes == 0:
            return NO_NODES_MESSAGE
        parts = sorted(f"{count} {reason}" for reason, count in self.histogram().items())
        return f"0/{self.num_nodes} nodes are available: {', '.join(parts)}."


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    """Either `node_name` is set (and `error` None) or `error` says why not."""

    node_name: str | None
    error: FitError | None = None
    feasible: int = 0
    scores: Mapping[str, int] = field(default_factory=dict)


def tie_break(pod: PodInfo, tied: Sequence[str]) -> str:
    # A stable pseudo-random pick per pod: replicas of one owner that tie on every
    # score land on different nodes, and the result never depends on a random seed.
    return tied[zlib.crc32((pod.uid or pod.key).encode()) % len(tied)]


def run_filters(profile: Profile, state: CycleState, node: NodeInfo) -> Reasons:
    """The reasons of the first filter that rejects `node`, or () if all pass."""
    for plugin in profile.filters:
        if plugin.name in state.skip_filter:
            continue
        reasons = plugin.filter(state, node)
        if reasons:
            return reasons
    return ()


def schedule(snapshot: Snapshot, pod: PodInfo, profile: Profile) -> ScheduleResult:
    """Choose a node for `pod` from `snapshot`: a pure function of its arguments."""
    state = CycleState(pod)
    for plugin in _unique_plugins(profile):
        plugin.prepare(state, snapshot)

    # This loop runs nodes x filters times per pod: the hot spot of the scheduler.
    filters = [f.filter for f in profile.filters if f.name not in state.skip_filter]
    feasible: list[NodeInfo] = []
    diagnosis: dict[str, Reasons] = {}
    for node in snapshot.nodes:
        for check in filters:
            reasons = check(state, node)
            if reasons:
                diagnosis[node.name] = reasons
                break
        else:
            feasible.append(node)

    if not feasible:
        return ScheduleResult(None, FitError(len(snapshot.nodes), diagnosis))
    if len(feasible) == 1:  # nothing to compare: skip scoring, as Kubernetes does
        return ScheduleResult(feasible[0].name, feasible=1)

    totals = score_nodes(profile, state, feasible)
    top = max(totals.values())
    best = tie_break(pod, [name for name, total in totals.items() if total == top])
    return ScheduleResult(best, feasible=len(feasible), scores=totals)


def score_nodes(profile: Profile, state: CycleState, nodes: Sequence[NodeInfo]) -> dict[str, int]:
    totals = dict.fromkeys((n.name for n in nodes), 0)
    for scorer in profile.scorers:
        if scorer.plugin.name in state.skip_score:
            continue  # it would add the same amount to every node
        raw = scorer.plugin.score_all(state, nodes)
        normalized = scorer.plugin.normalize(raw)
        for node, value in zip(nodes, normalized, strict=True):
            totals[node.name] += scorer.weight * value
    return totals


def _unique_plugins(profile: Profile) -> list[Plugin]:
    # One plugin object may both filter and score (taints, node affinity): prepare once.
    seen: dict[int, Plugin] = {}
    for plugin in (*profile.filters, *(s.plugin for s in profile.scorers)):
        seen.setdefault(id(plugin), plugin)
    return list(seen.values())
