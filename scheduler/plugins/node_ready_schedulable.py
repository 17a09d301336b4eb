"""Filter: the node is Ready and not cordoned.

A node whose Ready condition is not True, or whose `spec.unschedulable` is set
(`kubelite cordon`), takes no new pods, unless the pod tolerates the taint the node
lifecycle controller would put there for that state (`node.kubernetes.io/not-ready`,
`.../unreachable`, `.../unschedulable`), as DaemonSet-style pods do. The reason
wording is Kubernetes' ("node(s) were unschedulable"; "node(s) were not ready" from
its former node-condition predicate, which today's taint-based eviction replaced).
"""

from __future__ import annotations

from api.core import Taint
from scheduler.framework import BasePlugin, CycleState, Reasons
from scheduler.nodeinfo import NodeInfo
from scheduler.plugins.taint_toleration import tolerates

__all__ = ["REASON_NOT_READY", "REASON_UNSCHEDULABLE", "NodeReadySchedulable"]

REASON_NOT_READY = "node(s) were not ready"
REASON_UNSCHEDULABLE = "node(s) were unschedulable"

_NOT_READY = Taint(key="node.kubernetes.io/not-ready", effect="NoSchedule")
_UNREACHABLE = Taint(key="node.kubernetes.io/unreachable", effect="NoSchedule")
_UNSCHEDULABLE = Taint(key="node.kubernetes.io/unschedulable", effect="NoSchedule")


class NodeReadySchedulable(BasePlugin):
    name = "NodeReadySchedulable"

    def filter(self, state: CycleState, node: NodeInfo) -> Reasons:
        tolerations = state.pod.pod.spec.tolerations or []
        if node.ready != "True":
            # Unknown means the kubelet stopped reporting: the "unreachable" taint.
            taint = _NOT_READY if node.ready == "False" else _UNREACHABLE
            if not tolerates(tolerations, taint):
                return (REASON_NOT_READY,)
        if node.unschedulable and not tolerates(tolerations, _UNSCHEDULABLE):
            return (REASON_UNSCHEDULABLE,)
        return ()
