"""``NodeNetwork``: the pod network of one node, as the kubelet drives it.

    setup()          bridge (gateway = first address of the pod CIDR), ip_forward, nft table
    attach(uid, ns)  address (IPAM) -> veth into the pod as eth0 -> pod side -> hostPorts
    detach(uid)      hostPorts -> veth -> address                    (the reverse order)
    set_routes(...)  host-gw: each peer's pod CIDR via that node's address
    teardown()       everything above, for the whole node

Ordering and invariants:
- The address is claimed first and freed last, so an address is never on two pods: the
  veth and the DNAT elements of a pod exist only while its IPAM record does.
- ``attach`` undoes its own steps in reverse when one fails (it never leaves half a pod), and
  is idempotent for a pod uid: a second call, or one after a kubelet restart, converges the
  same pod to the same address.
- Disk (the IPAM records, hostPorts included) is the truth for what we own; ``setup`` replays
  the hostPorts from it into a freshly built nft table. Our routes are recognised by their
  protocol number in the kernel.
- All netlink and nft work happens in the node's namespace (``node_netns``) when the node is
  one (simulated hosts); the pod namespace is only entered to configure eth0.
- The calls block: call them from a thread (``asyncio.to_thread``); pyroute2's synchronous API
  refuses to run inside a running event loop. attach/detach/set_routes/gc may run concurrently
  (IPAM under flock, each nft change one transaction); ``setup`` rebuilds the table from disk,
  so run it before the others, not beside them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from runtime.network import links, nft
from runtime.network.errors import NetworkError
from runtime.network.ipam import Allocation, HostPort, Ipam
from runtime.network.netns import with_ipr, write_sysctl

_FAILURES = (NetlinkError, OSError, ValueError, NetworkError)


@contextlib.contextmanager
def _step(what: str) -> Iterator[None]:
    """Turn any failure inside into ``NetworkError("failed to <what>: <cause>")`` with the cause chained."""
    try:
        yield
    except _FAILURES as err:
        raise NetworkError(f"failed to {what}: {err}") from err


class NodeNetwork:
    """One node's bridge, pods, hostPorts and routes; state under ``root_dir``."""

    def __init__(self, root_dir: Path, *, pod_cidr: str, node_ip: str, bridge: str = "kl0",
                 node_netns: str | None = None, masquerade: bool = False) -> None:
        if len(bridge) > 15:
            raise NetworkError(f"bridge name {bridge!r} is longer than 15 characters")
        self.root_dir = root_dir
        self.ipam = Ipam(root_dir / "ipam", pod_cidr)
        self.pod_cidr = str(self.ipam.network)
        self.gateway = str(self.ipam.gateway)
        self.prefixlen = self.ipam.network.prefixlen
        self.node_ip = str(ipaddress.ip_address(node_ip))
        self.bridge = bridge
        self.masquerade = masquerade
        self.netns_path = (node_netns if "/" in node_netns else f"/run/netns/{node_netns}") if node_netns else None
        self.nft = nft.Nft(self.netns_path)

    # -- the node ------------------------------------------------------------------------

    def setup(self) -> None:
        def work(ip: IPRoute) -> dict[str, str]:
            bridge = links.ensure_bridge(ip, self.bridge, gateway=self.gateway, prefixlen=self.prefixlen)
            for index, _ in links.bridge_ports(ip, bridge):
                links.plug(ip, index, bridge)
            write_sysctl("net.ipv4.ip_forward", "1")
            # loopback-sourced traffic DNATed to a pod (curl 127.0.0.1:HOSTPORT) may leave via the bridge
            write_sysctl(f"net.ipv4.conf.{self.bridge}.route_localnet", "1")
            return links.our_routes(ip)

        with _step(f"set up bridge {self.bridge} for {self.pod_cidr}"):
            peers = with_ipr(self.netns_path, work)
            script = nft.base_ruleset(bridge=self.bridge, pod_cidr=self.pod_cidr, masquerade=self.masquerade)
            script += nft.set_peers(peers)
            script += "".join(nft.add_hostports(a, node_ip=self.node_ip) for a in self.ipam.allocated().values())
            self.nft.run(script)

    def teardown(self) -> None:
        """Remove the pods' veths, the bridge, the nft table, our routes and the IPAM state; idempotent."""
        def work(ip: IPRoute) -> None:
            for alloc in self.ipam.allocated().values():
                links.delete_link(ip, links.host_veth_name(alloc.pod_uid))
            bridge = links.index_of(ip, self.bridge)
            if bridge is not None:
                for _, name in links.bridge_ports(ip, bridge):
                    links.delete_link(ip, name)
                links.delete_link(ip, self.bridge)
            for dst in links.our_routes(ip):
                links.delete_route(ip, dst)

        with _step(f"tear down bridge {self.bridge}"):
            with_ipr(self.netns_path, work)
            self.nft.run(nft.delete_table())
            self.ipam.destroy()

    def set_routes(self, peers: dict[str, str]) -> None:
        """Route each peer pod CIDR via that node's address (host-gw); drop routes of ours not listed."""
        wanted = {str(ipaddress.ip_network(cidr)): str(ipaddress.ip_address(gw)) for cidr, gw in peers.items()}
        wanted.pop(self.pod_cidr, None)  # our own CIDR is on the bridge

        def work(ip: IPRoute) -> None:
            current = links.our_routes(ip)
            for dst in current.keys() - wanted.keys():
                links.delete_route(ip, dst)
            for dst, gateway in wanted.items():
                if current.get(dst) != gateway:
                    links.replace_route(ip, dst, gateway)

        with _step(f"set routes to pod CIDRs {sorted(wanted)}"):
            with_ipr(self.netns_path, work)
            self.nft.run(nft.set_peers(wanted))

    # -- pods ----------------------------------------------------------------------------

    def attach(self, pod_uid: str, netns_path: str, *, host_ports: Sequence[HostPort] = ()) -> str:
        """Connect the pod's namespace to the bridge and return its IP; idempotent per pod uid."""
        host_name = links.host_veth_name(pod_uid)
        created: list[bool] = []  # set by plug(), read by the undo: a veth that existed before stays

        def plug(ip: IPRoute) -> None:
            bridge = links.index_of(ip, self.bridge)
            if bridge is None:
                raise NetworkError(f"bridge {self.bridge} does not exist (setup() not run)")
            if links.create_veth(ip, host_name, netns_path):
                created.append(True)
            index = links.index_of(ip, host_name)
            if index is None:
                raise NetworkError(f"veth {host_name} vanished")
            links.plug(ip, index, bridge)

        def configure(pod: IPRoute) -> None:
            links.configure_pod(pod, address=alloc.ip, prefixlen=self.prefixlen, gateway=self.gateway)

        with _step(f"attach pod {pod_uid} to bridge {self.bridge}"), contextlib.ExitStack() as undo:
            alloc, new = self.ipam.allocate(pod_uid)
            if new:
                undo.callback(self.ipam.release, pod_uid)
            if not os.path.exists(netns_path):
                raise NetworkError(f"network namespace {netns_path} does not exist")
            undo.callback(self._delete_veth_if, created, host_name)
            with_ipr(self.netns_path, plug)
            with_ipr(netns_path, configure)
            self._set_host_ports(alloc, tuple(host_ports))
            undo.pop_all()
            return alloc.ip

    def detach(self, pod_uid: str) -> None:
        """Remove the pod's veth, its hostPorts and free its address; idempotent."""
        with _step(f"detach pod {pod_uid} from bridge {self.bridge}"):
            self._delete_veth(links.host_veth_name(pod_uid))
            alloc = self.ipam.get(pod_uid)
            if alloc is not None and alloc.host_ports:
                self.nft.run(nft.remove_hostports(alloc, node_ip=self.node_ip))
            self.ipam.release(pod_uid)

    def allocated(self) -> dict[str, str]:
        """pod uid -> IP of every pod holding an address."""
        return {uid: alloc.ip for uid, alloc in self.ipam.allocated().items()}

    def gc(self, live_pod_uids: Iterable[str]) -> list[str]:
        """Detach every pod not in ``live_pod_uids`` and remove bridge ports no pod owns; the uids detached."""
        live = set(live_pod_uids)
        gone = sorted(uid for uid in self.ipam.allocated() if uid not in live)
        for uid in gone:
            self.detach(uid)
        owned = {links.host_veth_name(uid) for uid in self.ipam.allocated()}

        def work(ip: IPRoute) -> None:
            bridge = links.index_of(ip, self.bridge)
            for _, name in links.bridge_ports(ip, bridge) if bridge is not None else []:
                if name not in owned:
                    links.delete_link(ip, name)

        with _step(f"collect stale ports of bridge {self.bridge}"):
            with_ipr(self.netns_path, work)
        return gone

    # -- internals -----------------------------------------------------------------------

    def _delete_veth_if(self, created: list[bool], host_name: str) -> None:
        if created:
            self._delete_veth(host_name)

    def _delete_veth(self, host_name: str) -> None:
        with_ipr(self.netns_path, lambda ip: links.delete_link(ip, host_name))

    def _set_host_ports(self, alloc: Allocation, host_ports: tuple[HostPort, ...]) -> None:
        if host_ports == alloc.host_ports:
            return
        wanted = Allocation(pod_uid=alloc.pod_uid, ip=alloc.ip, host_ports=host_ports)
        try:
            script = nft.remove_hostports(alloc, node_ip=self.node_ip)
            self.nft.run(script + nft.add_hostports(wanted, node_ip=self.node_ip))
        except NetworkError as err:
            ports = ", ".join(f"{p.host_port}/{p.protocol}" for p in host_ports)
            raise NetworkError(f"host ports {ports} (one may be taken by another pod): {err}") from err
        self.ipam.update(wanted)


def hosts_file(pod_name: str, pod_ip: str, hostname: str) -> str:
    """The pod's /etc/hosts, as the kubelet writes it: localhost entries, then the pod's own name."""
    names = hostname if hostname == pod_name else f"{hostname}\t{pod_name}"
    return (
        "# Kubernetes-managed hosts file.\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "fe00::0\tip6-mcastprefix\n"
        "fe00::1\tip6-allnodes\n"
        "fe00::2\tip6-allrouters\n"
        f"{pod_ip}\t{names}\n"
    )
