"""nftables for pod networking: one table of our own, ``table ip kubelite``, nothing else touched.

    map hostports   (node address . protocol . host port) -> (pod ip . container port)
    set peers       other nodes' pod CIDRs (filled by set_routes), never masqueraded
    prerouting/output  DNAT through the map: from other machines, and from the node itself
    postrouting     masquerade (a) loopback sources (``curl 127.0.0.1:HOSTPORT``, with
                    route_localnet on the bridge), (b) DNATed traffic from our own pods (hairpin:
                    a pod reaching its own or a neighbour's hostPort), (c) optionally pods leaving
                    for outside the cluster (the node's ``masquerade`` option)

Why a map rather than a rule per port: adding or removing a pod is one element change in one
atomic transaction, a second pod claiming a taken port fails with EEXIST instead of shadowing
the first, and the rules never need handles.

Text generation is pure (unit-tested); ``Nft.run`` applies a script atomically with ``nft -f -``,
inside the node's network namespace when the node is one (simulated hosts).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable

from runtime.network.errors import NetworkError
from runtime.network.ipam import Allocation

TABLE = "kubelite"
LOOPBACK = "127.0.0.1"


def base_ruleset(*, bridge: str, pod_cidr: str, masquerade: bool) -> str:
    """Recreate the table (idempotent: ``add`` first so that ``delete`` cannot fail)."""
    outside = (f'        oifname != "{bridge}" ip saddr {pod_cidr} ip daddr != @peers '
               "masquerade\n") if masquerade else ""
    dnat = "meta l4proto { tcp, udp } dnat ip to ip daddr . meta l4proto . th dport map @hostports"
    return (
        f"add table ip {TABLE}\n"
        f"delete table ip {TABLE}\n"
        f"table ip {TABLE} {{\n"
        "    map hostports { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }\n"
        "    set peers { type ipv4_addr; flags interval; }\n"
        "    chain prerouting {\n"
        "        type nat hook prerouting priority dstnat; policy accept;\n"
        f"        {dnat}\n"
        "    }\n"
        "    chain output {\n"
        "        type nat hook output priority -100; policy accept;\n"
        f"        {dnat}\n"
        "    }\n"
        "    chain postrouting {\n"
        "        type nat hook postrouting priority srcnat; policy accept;\n"
        f'        oifname "{bridge}" ip saddr 127.0.0.0/8 masquerade\n'
        f'        oifname "{bridge}" ip saddr {pod_cidr} ct status dnat masquerade\n'
        f"{outside}"
        "    }\n"
        "}\n"
    )


def delete_table() -> str:
    return f"add table ip {TABLE}\ndelete table ip {TABLE}\n"


def _node_addresses(node_ip: str) -> list[str]:
    # Like `docker run -p`: a hostPort answers on the node's address and on its loopback.
    return [node_ip] if node_ip == LOOPBACK else [node_ip, LOOPBACK]


def _elements(alloc: Allocation, node_ip: str) -> list[tuple[str, str]]:
    """(key, value) pairs of the hostports map for one pod."""
    return [
        (f"{address} . {port.protocol.lower()} . {port.host_port}", f"{alloc.ip} . {port.container_port}")
        for port in alloc.host_ports
        for address in _node_addresses(node_ip)
    ]


def add_hostports(alloc: Allocation, *, node_ip: str) -> str:
    return "".join(f"add element ip {TABLE} hostports {{ {k} : {v} }}\n" for k, v in _elements(alloc, node_ip))


def remove_hostports(alloc: Allocation, *, node_ip: str) -> str:
    """Delete the pod's elements; adding them first (a no-op when present) makes it idempotent."""
    return "".join(
        f"add element ip {TABLE} hostports {{ {k} : {v} }}\ndelete element ip {TABLE} hostports {{ {k} }}\n"
        for k, v in _elements(alloc, node_ip)
    )


def set_peers(cidrs: Iterable[str]) -> str:
    listed = ", ".join(sorted(cidrs))
    return f"flush set ip {TABLE} peers\n" + (f"add element ip {TABLE} peers {{ {listed} }}\n" if listed else "")


class Nft:
    """Runs nft scripts, in the node's network namespace (a path) or the current one."""

    def __init__(self, netns_path: str | None) -> None:
        self.prefix = ["nsenter", f"--net={netns_path}"] if netns_path else []

    def run(self, script: str) -> None:
        if not script:
            return
        result = subprocess.run([*self.prefix, "nft", "-f", "-"], input=script, capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise NetworkError(f"nft: {result.stderr.strip() or result.returncode}")

    def list_table(self) -> str | None:
        """The table as nft prints it, None when it does not exist."""
        result = subprocess.run([*self.prefix, "nft", "list", "table", "ip", TABLE], capture_output=True, text=True,
                                check=False)
        return result.stdout if result.returncode == 0 else None
