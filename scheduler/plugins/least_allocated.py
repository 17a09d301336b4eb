"""Score: prefer the node with the most cpu and memory left after placing the pod.

Each resource scores (allocatable - requested) * 100 / allocatable, where requested
includes this pod; the two are averaged. Pods that request nothing count as
100m / 200Mi here (only here: filtering uses their true zero), so that best-effort
pods spread instead of piling onto one node.
"""

from __future__ import annotations

from collections.abc import Sequence

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

    def score_all(self, state: CycleState, nodes: Sequence[NodeInfo]) -> list[int]:
        # The same arithmetic as score(), inlined: this runs for every feasible node of every pod.
        # Totals are never 0 (non-zero requests), so "0 < total <= alloc" also rules out alloc 0.
        want_cpu, want_mem = state.pod.non_zero_requests.milli_cpu, state.pod.non_zero_requests.memory
        out: list[int] = []
        for node in nodes:
            alloc_cpu, alloc_mem = node.allocatable.milli_cpu, node.allocatable.memory
            cpu_total = node.non_zero_requested.milli_cpu + want_cpu
            mem_total = node.non_zero_requested.memory + want_mem
            cpu = (alloc_cpu - cpu_total) * MAX_NODE_SCORE // alloc_cpu if 0 < cpu_total <= alloc_cpu else 0
            mem = (alloc_mem - mem_total) * MAX_NODE_SCORE // alloc_mem if 0 < mem_total <= alloc_mem else 0
            out.append((cpu + mem) // 2)
        return out
