"""The pod network as the kubelet sees it: attach a sandbox (-> pod IP), detach, routes, GC.

Two implementations behind one small interface:

* `NoNetwork`: pods keep only their loopback (tests of the kubelet alone, or a node whose
  podCIDR has not been assigned); `podIP` stays empty.
* `BridgeNetwork`: `runtime.network.NodeNetwork` (bridge kl0, IPAM from the node's podCIDR,
  veth, host-gw routes, hostPort DNAT). Its calls block, so they run in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol


class PodNetwork(Protocol):
    async def attach(self, pod_uid: str, netns: Path, *, host_ports: Sequence[tuple[int, int, str]]) -> str | None:
        """Connect the pod and return its IP (None: no pod network). Idempotent per uid."""

    async def detach(self, pod_uid: str) -> None: ...

    async def set_routes(self, peers: dict[str, str]) -> None: ...

    async def gc(self, live: Iterable[str]) -> None: ...

    def ip_of(self, pod_uid: str) -> str | None: ...


class NoNetwork:
    async def attach(self, pod_uid: str, netns: Path, *, host_ports: Sequence[tuple[int, int, str]]) -> str | None:
        return None

    async def detach(self, pod_uid: str) -> None:
        return None

    async def set_routes(self, peers: dict[str, str]) -> None:
        return None

    async def gc(self, live: Iterable[str]) -> None:
        return None

    def ip_of(self, pod_uid: str) -> str | None:
        return None


class BridgeNetwork:
    """`runtime.network.NodeNetwork` driven from asyncio; set up once the node has a podCIDR."""

    def __init__(self, root_dir: Path, *, pod_cidr: str, node_ip: str, bridge: str = "kl0",
                 node_netns: str | None = None, masquerade: bool = False) -> None:
        from runtime.network import NodeNetwork

        self._net: Any = NodeNetwork(root_dir, pod_cidr=pod_cidr, node_ip=node_ip, bridge=bridge,
                                     node_netns=node_netns, masquerade=masquerade)
        self.pod_cidr = pod_cidr
        self._lock = asyncio.Lock()  # nft and IPAM updates are not meant to interleave

    async def setup(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._net.setup)

    async def teardown(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._net.teardown)

    async def attach(self, pod_uid: str, netns: Path, *, host_ports: Sequence[tuple[int, int, str]]) -> str | None:
        from runtime.network import HostPort

        ports = [HostPort(h, c, p) for h, c, p in host_ports]
        async with self._lock:
            ip: str = await asyncio.to_thread(self._net.attach, pod_uid, str(netns), host_ports=ports)
        return ip

    async def detach(self, pod_uid: str) -> None:
        async with self._lock:
            await asyncio.to_thread(self._net.detach, pod_uid)

    async def set_routes(self, peers: dict[str, str]) -> None:
        async with self._lock:
            await asyncio.to_thread(self._net.set_routes, peers)

    async def gc(self, live: Iterable[str]) -> None:
        async with self._lock:
            await asyncio.to_thread(self._net.gc, list(live))

    def ip_of(self, pod_uid: str) -> str | None:
        ip: str | None = self._net.allocated().get(pod_uid)
        return ip

