"""Filter: the pod's host ports are free on the node.

Two host ports collide when protocol and port are equal and their addresses overlap
(0.0.0.0, the default, overlaps every address). Pods already bound or assumed on the
node hold their ports. Reason wording is Kubernetes':
"node(s) didn't have free ports for the requested pod ports".
"""

from __future__ import annotations

from scheduler.framework import BasePlugin, CycleState, Reasons, Snapshot
from scheduler.nodeinfo import NodeInfo, ports_conflict

__all__ = ["REASON", "HostPorts"]

REASON = "node(s) didn't have free ports for the requested pod ports"


class HostPorts(BasePlugin):
    name = "HostPorts"

    def prepare(self, state: CycleState, snapshot: Snapshot) -> None:
        if not state.pod.host_ports:
            state.skip_filter.add(self.name)

    def filter(self, state: CycleState, node: NodeInfo) -> Reasons:
        wanted = state.pod.host_ports
        if not wanted or not node.used_ports:
            return ()
        for port in wanted:
            if any(ports_conflict(port, used) for used in node.used_ports):
                return (REASON,)
        return ()
