"""Simulated hosts: network namespaces on a root bridge, so that a multi-node cluster runs
on one machine and still crosses a real (virtual) network.

    root namespace                          kl-node1 (netns)       kl-node2 (netns)
    kl-br0 198.51.100.1/24 --- kl-n1 <==veth==> eth0 198.51.100.11   eth0 198.51.100.12
                           \\-- kl-n2 <==veth===================================/
    unreachable 10.244.0.0/16, 10.43.0.0/16   (pod and ClusterIP traffic never leaves through the
                                               root namespace)

198.51.100.0/24 is TEST-NET-2 (RFC 5737): never routed on the internet, and not this
machine's uplink. The node namespaces get no default route and nothing masquerades, so no
traffic of the simulated cluster can leave the machine.
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass

from pyroute2 import IPRoute, NetNS, netns
from pyroute2.netlink.exceptions import NetlinkError

NETWORK = ipaddress.ip_network("198.51.100.0/24")
GATEWAY = "198.51.100.1"
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.43.0.0/16"
UNREACHABLE = (CLUSTER_CIDR, SERVICE_CIDR)


class FabricError(RuntimeError):
    pass


@dataclass(frozen=True)
class Host:
    name: str  # node name and network namespace name
    address: str
    veth: str  # root-namespace end of its link


class Fabric:
    """The simulated hosts of one cluster; every name starts with `prefix`."""

    def __init__(self, prefix: str = "kl") -> None:
        self.prefix = prefix
        self.bridge = f"{prefix}-br0"

    def host(self, index: int) -> Host:
        return Host(name=f"{self.prefix}-node{index}", address=str(NETWORK[10 + index]),
                    veth=f"{self.prefix}-n{index}")

    def create(self, count: int) -> list[Host]:
        hosts = [self.host(i) for i in range(1, count + 1)]
        try:
            with IPRoute() as ip:
                if not ip.link_lookup(ifname=self.bridge):
                    ip.link("add", ifname=self.bridge, kind="bridge")
                bridge = ip.link_lookup(ifname=self.bridge)[0]
                with contextlib.suppress(NetlinkError):  # already there on a re-run
                    ip.addr("add", index=bridge, address=GATEWAY, prefixlen=NETWORK.prefixlen)
                ip.link("set", index=bridge, state="up")
                for dst in UNREACHABLE:
                    with contextlib.suppress(NetlinkError):
                        ip.route("add", dst=dst, type="unreachable")
                for host in hosts:
                    self._create_host(ip, bridge, host)
        except NetlinkError as err:
            raise FabricError(f"failed to create simulated hosts on {self.bridge}: {err}") from err
        return hosts

    @staticmethod
    def _create_host(ip: IPRoute, bridge: int, host: Host) -> None:
        if host.name not in netns.listnetns():
            netns.create(host.name)
        if not ip.link_lookup(ifname=host.veth):
            ip.link("add", ifname=host.veth, kind="veth", peer={"ifname": "eth0", "net_ns_fd": host.name})
        veth = ip.link_lookup(ifname=host.veth)[0]
        ip.link("set", index=veth, master=bridge, state="up")
        with NetNS(host.name) as ns:
            lo = ns.link_lookup(ifname="lo")[0]
            ns.link("set", index=lo, state="up")
            eth0 = ns.link_lookup(ifname="eth0")[0]
            with contextlib.suppress(NetlinkError):
                ns.addr("add", index=eth0, address=host.address, prefixlen=NETWORK.prefixlen)
            ns.link("set", index=eth0, state="up")

    def hosts(self) -> list[Host]:
        names = [n for n in netns.listnetns() if n.startswith(f"{self.prefix}-node")]
        return sorted((self.host(int(n.rsplit("node", 1)[1])) for n in names), key=lambda h: h.name)

    def cut(self, host: Host) -> None:
        """Unplug a host's cable (its link goes down), as a failing machine would."""
        with IPRoute() as ip:
            for index in ip.link_lookup(ifname=host.veth):
                ip.link("set", index=index, state="down")

    def reconnect(self, host: Host) -> None:
        with IPRoute() as ip:
            for index in ip.link_lookup(ifname=host.veth):
                ip.link("set", index=index, state="up")

    def destroy(self) -> None:
        """Remove every host, the bridge and the safety routes; idempotent."""
        with IPRoute() as ip:
            for host in self.hosts():
                for index in ip.link_lookup(ifname=host.veth):
                    with contextlib.suppress(NetlinkError):
                        ip.link("del", index=index)
                with contextlib.suppress(OSError, NetlinkError):
                    netns.remove(host.name)
            for index in ip.link_lookup(ifname=self.bridge):
                with contextlib.suppress(NetlinkError):
                    ip.link("del", index=index)
            for dst in UNREACHABLE:
                with contextlib.suppress(NetlinkError):
                    ip.route("del", dst=dst, type="unreachable")
