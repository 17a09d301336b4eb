"""Score: spread the pods of one owner (ReplicaSet, ...) across nodes.

The raw score is how many pods with the same controller ownerReference the node
already has (assumed ones included, so a burst of replicas spreads too); after
normalisation the emptiest node gets 100 and the fullest 0. A pod without a
controller scores every node equally.
"""

from __future__ import annotations

from collections.abc import Sequence

from scheduler.framework import MAX_NODE_SCORE, BasePlugin, CycleState, Snapshot
from scheduler.nodeinfo import NodeInfo

__all__ = ["OwnerSpread"]


class OwnerSpread(BasePlugin):
    name = "OwnerSpread"

    def prepare(self, state: CycleState, snapshot: Snapshot) -> None:
        if not state.pod.owner_uid:
            state.skip_score.add(self.name)

    def score(self, state: CycleState, node: NodeInfo) -> int:
        owner = state.pod.owner_uid
        return node.owner_counts.get(owner, 0) if owner else 0

    def score_all(self, state: CycleState, nodes: Sequence[NodeInfo]) -> list[int]:
        owner = state.pod.owner_uid
        if not owner:
            return [0] * len(nodes)
        return [node.owner_counts.get(owner, 0) for node in nodes]

    def normalize(self, scores: list[int]) -> list[int]:
        top = max(scores, default=0)
        if top == 0:
            return [MAX_NODE_SCORE for _ in scores]
        return [MAX_NODE_SCORE * (top - s) // top for s in scores]
