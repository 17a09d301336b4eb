"""The scheduler's own view of the cluster: nodes, the pods on them, and assumed pods.

Why a cache of its own rather than the informers' stores: between choosing a node
and seeing the binding come back through the watch, a pod is "assumed" — counted on
its node at once, so the next cycle (milliseconds later) does not put a second pod
into the same free core. The watch later confirms it (`add_pod`), or the binding
fails (`forget`), or, if neither happens within `assumed_ttl` seconds after the
binding call returned, the assumption expires (`cleanup_expired`), so a lost watch
event cannot leak capacity forever.

Invariants (checked by the property tests):

- a pod key is counted on at most one node at a time;
- every NodeInfo's sums equal the sums over its pods (NodeInfo keeps them so);
- pods in a terminal phase (Succeeded, Failed) are not counted: they hold nothing;
- `snapshot()` returns immutable NodeInfos of known nodes only, in name order.

All methods are synchronous and take time as an argument: the asyncio loop that
owns the cache calls them between awaits, so no lock is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.core import Node, Pod
from scheduler.framework import Snapshot
from scheduler.nodeinfo import NodeInfo, PodInfo, pod_key

__all__ = ["CacheError", "SchedulerCache", "is_terminal"]

_TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


class CacheError(Exception):
    """A call that contradicts the cache's state (a bug in the caller)."""


def is_terminal(pod: Pod) -> bool:
    return bool(pod.status and pod.status.phase in _TERMINAL_PHASES)


@dataclass(slots=True)
class _PodState:
    info: PodInfo
    node_name: str
    assumed: bool
    # Set once the binding call returned: the assumption expires after this moment.
    deadline: float | None = None


class SchedulerCache:
    def __init__(self, *, assumed_ttl: float = 30.0) -> None:
        self.assumed_ttl = assumed_ttl
        self._nodes: dict[str, NodeInfo] = {}
        self._pods: dict[str, _PodState] = {}
        self._snapshot: Snapshot | None = None
        self._order: list[str] | None = None  # node names, sorted; changes only with the node set

    # ------------------------------------------------------------ nodes

    def add_node(self, node: Node) -> None:
        name = node.metadata.name or ""
        current = self._nodes.get(name)
        self._nodes[name] = current.with_node(node) if current else NodeInfo.for_node(node)
        if current is None or current.node is None:
            self._order = None
        self._snapshot = None

    update_node = add_node

    def remove_node(self, name: str) -> None:
        current = self._nodes.get(name)
        if current is None:
            return
        if current.pods:
            # Its pods may still be deleted or reported later: keep them as a ghost.
            self._nodes[name] = current.with_node(None)
        else:
            del self._nodes[name]
        self._order = None
        self._snapshot = None

    # ------------------------------------------------------------ pods

    def assume(self, info: PodInfo, node_name: str) -> None:
        """Count `info` on `node_name` before the binding is confirmed."""
        if info.key in self._pods:
            raise CacheError(f"pod {info.key} is already in the scheduler cache")
        self._pods[info.key] = _PodState(info, node_name, assumed=True)
        self._place(info, node_name)

    def finish_binding(self, key: str, now: float) -> None:
        """The binding call returned: start the expiry clock of the assumption."""
        state = self._pods.get(key)
        if state is not None and state.assumed:
            state.deadline = now + self.assumed_ttl

    def forget(self, key: str) -> None:
        """Drop an assumption (the binding failed); confirmed pods are left alone."""
        state = self._pods.get(key)
        if state is not None and state.assumed:
            self._remove(key)

    def add_pod(self, pod: Pod) -> None:
        """A pod with spec.nodeName seen through the watch (confirms an assumption)."""
        node_name = pod.spec.node_name
        key = pod_key(pod)
        if not node_name or is_terminal(pod):
            self._remove(key)
            return
        state = self._pods.get(key)
        if state is not None:
            if state.info.pod is pod:
                return
            self._remove(key)
        info = PodInfo.from_pod(pod)
        self._pods[key] = _PodState(info, node_name, assumed=False)
        self._place(info, node_name)

    update_pod = add_pod

    def remove_pod(self, pod: Pod) -> None:
        self._remove(pod_key(pod))

    def cleanup_expired(self, now: float) -> list[str]:
        """Drop assumptions whose binding returned over `assumed_ttl` ago; return their keys."""
        expired = [
            key
            for key, state in self._pods.items()
            if state.assumed and state.deadline is not None and state.deadline <= now
        ]
        for key in expired:
            self._remove(key)
        return expired

    # ------------------------------------------------------------ reads

    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            if self._order is None:
                self._order = sorted(name for name, n in self._nodes.items() if n.node is not None)
            self._snapshot = Snapshot(tuple(self._nodes[name] for name in self._order))
        return self._snapshot

    def is_assumed(self, key: str) -> bool:
        state = self._pods.get(key)
        return state is not None and state.assumed

    def node_of(self, key: str) -> str | None:
        state = self._pods.get(key)
        return state.node_name if state else None

    def uid_of(self, key: str) -> str | None:
        """The uid of the pod counted under `key` (bound or assumed), if any."""
        state = self._pods.get(key)
        return state.info.uid if state else None

    def node_info(self, name: str) -> NodeInfo | None:
        return self._nodes.get(name)

    def pod_count(self) -> int:
        return len(self._pods)

    def assumed_count(self) -> int:
        return sum(1 for s in self._pods.values() if s.assumed)

    # ------------------------------------------------------------ internals

    def _place(self, info: PodInfo, node_name: str) -> None:
        current = self._nodes.get(node_name) or NodeInfo(name=node_name)
        self._nodes[node_name] = current.with_pod(info)
        self._snapshot = None

    def _remove(self, key: str) -> None:
        state = self._pods.pop(key, None)
        if state is None:
            return
        current = self._nodes.get(state.node_name)
        if current is None:
            return
        updated = current.without_pod(key)
        if updated.node is None and not updated.pods:
            del self._nodes[state.node_name]
        else:
            self._nodes[state.node_name] = updated
        self._snapshot = None
