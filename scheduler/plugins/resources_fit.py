"""Filter: the pod's requests fit in what the node has left.

"Left" is allocatable minus the requests of every pod counted on the node, assumed
pods included, so two pods scheduled back to back cannot both take the last core.
A resource the pod does not request is not checked (a node that is over-committed
in memory still takes a pod that requests only cpu), and one more pod must fit under
the node's pod count. Unlike the other filters this one may give several reasons for
one node, worded as Kubernetes words them: "Too many pods", "Insufficient cpu",
"Insufficient memory".
"""

from __future__ import annotations

from scheduler.framework import BasePlugin, CycleState, Reasons
from scheduler.nodeinfo import NodeInfo

__all__ = ["INSUFFICIENT_CPU", "INSUFFICIENT_MEMORY", "TOO_MANY_PODS", "ResourcesFit"]

TOO_MANY_PODS = "Too many pods"
INSUFFICIENT_CPU = "Insufficient cpu"
INSUFFICIENT_MEMORY = "Insufficient memory"


class ResourcesFit(BasePlugin):
    name = "ResourcesFit"

    def filter(self, state: CycleState, node: NodeInfo) -> Reasons:
        reasons: list[str] = []
        if len(node.pods) + 1 > node.allowed_pods:
            reasons.append(TOO_MANY_PODS)
        want = state.pod.requests
        alloc, used = node.allocatable, node.requested
        if want.milli_cpu > 0 and want.milli_cpu > alloc.milli_cpu - used.milli_cpu:
            reasons.append(INSUFFICIENT_CPU)
        if want.memory > 0 and want.memory > alloc.memory - used.memory:
            reasons.append(INSUFFICIENT_MEMORY)
        return tuple(reasons)
