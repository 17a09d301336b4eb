"""Score: prefer the node with the most cpu and memory left after placing the pod.

Each resource scores (allocatable - requested) * 100 / allocatable, where requested
includes this pod; the two are averaged. Pods that request nothing count as
100m / 200Mi here (only here: filtering uses their true zero), so that best-effort
pods spread instead of piling onto one node.
"""

from __future__ import annotations

from scheduler.framework import MAX_NODE_SCORE, BasePlugin, CycleState
from scheduler.nodeinfo import NodeInfo

__all__ = ["LeastAllocated"]


def _free_share(allocatable: int, requested: int) -> int:
    if allocatable <= 0 or requested > allocatable:
        return 0
    return (allocatable - requested) * MAX_NODE_SCORE // allocatable


class LeastAllocated(BasePlugin):
    name = "LeastAllocated"

    def score(self, state: CycleState, node: NodeInfo) -> int:
        want = state.pod.non_zero_requests
        used = node.non_zero_requested
        cpu = _free_share(node.allocatable.milli_cpu, used.milli_cpu + want.milli_cpu)
        memory = _free_share(node.allocatable.memory, used.memory + want.memory)
        return (cpu + memory) // 2
