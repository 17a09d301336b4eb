"""Pod network plumbing: a bridge per node, a veth per pod, host-gw routes, hostPort DNAT.

    net = NodeNetwork(Path("/var/lib/kubelite/network"), pod_cidr="10.244.1.0/24", node_ip="198.51.100.11")
    net.setup()
    ip = net.attach(pod_uid, "/run/kubelite/pods/<uid>/ns/net", host_ports=[HostPort(4000, 8080)])
    net.set_routes({"10.244.2.0/24": "198.51.100.12"})
    net.detach(pod_uid); net.teardown()

See README.md for the picture. The calls block (netlink and ``nft``): from asyncio, run them
with ``asyncio.to_thread``.
"""

from __future__ import annotations

from runtime.network import nft
from runtime.network.errors import NetworkError
from runtime.network.ipam import Allocation, HostPort, Ipam
from runtime.network.node import NodeNetwork, hosts_file

__all__ = ["Allocation", "HostPort", "Ipam", "NetworkError", "NodeNetwork", "hosts_file", "nft"]
