"""Pod network plumbing: a bridge per node, a veth per pod, host-gw routes, hostPort DNAT.

See README.md for the picture. The calls block (netlink and ``nft``): from asyncio, run them
with ``asyncio.to_thread``.
"""

from __future__ import annotations

from runtime.network.errors import NetworkError
from runtime.network.ipam import Allocation, HostPort, Ipam

__all__ = ["Allocation", "HostPort", "Ipam", "NetworkError"]
