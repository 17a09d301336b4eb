"""Pod CIDR allocation, pure: carve `cluster_cidr` into per-node subnets (/24 by default).

Invariants: a subnet is handed out at most once until released; `occupy` (used to rebuild the
state from existing Nodes on start) marks a subnet taken without handing it out, and refuses
subnets outside the cluster CIDR or of the wrong size. Allocation takes the lowest free subnet
after the last one handed out, wrapping around, so a subnet just released is not reused at
once (a node being deleted may still route it for a moment).
"""

from __future__ import annotations

import ipaddress


class CidrExhausted(Exception):
    """Every subnet of the cluster CIDR is taken."""


class CidrAllocator:
    def __init__(self, cluster_cidr: str, *, node_prefix: int = 24) -> None:
        self.network = ipaddress.ip_network(cluster_cidr, strict=False)
        if node_prefix < self.network.prefixlen:
            raise ValueError(f"node mask /{node_prefix} is larger than the cluster CIDR {cluster_cidr}")
        self.node_prefix = node_prefix
        self.size = 2 ** (node_prefix - self.network.prefixlen)
        self._step = 2 ** (self.network.max_prefixlen - node_prefix)
        self._used: set[int] = set()
        self._next = 0

    def _index(self, cidr: str) -> int:
        net = ipaddress.ip_network(cidr, strict=False)
        if net.prefixlen != self.node_prefix or not net.subnet_of(self.network):  # type: ignore[arg-type]
            raise ValueError(f"{cidr} is not a /{self.node_prefix} of {self.network}")
        return (int(net.network_address) - int(self.network.network_address)) // self._step

    def _cidr(self, index: int) -> str:
        address = ipaddress.ip_address(int(self.network.network_address) + index * self._step)
        return f"{address}/{self.node_prefix}"

    def occupy(self, cidr: str) -> None:
        """Mark a subnet taken (idempotent)."""
        self._used.add(self._index(cidr))

    def contains(self, cidr: str) -> bool:
        try:
            return self._index(cidr) in self._used
        except ValueError:
            return False

    def allocate(self) -> str:
        for offset in range(self.size):
            index = (self._next + offset) % self.size
            if index not in self._used:
                self._used.add(index)
                self._next = (index + 1) % self.size
                return self._cidr(index)
        raise CidrExhausted(f"no free /{self.node_prefix} left in {self.network}")

    def release(self, cidr: str) -> None:
        try:
            self._used.discard(self._index(cidr))
        except ValueError:
            pass  # not ours: nothing to free

    @property
    def used(self) -> int:
        return len(self._used)
