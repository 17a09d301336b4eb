"""Links, addresses and routes through netlink (pyroute2), on a handle the caller opened.

The handle belongs to one namespace (see ``netns.with_ipr``). Every function is idempotent:
it checks before it creates, and removing what is gone is not an error, so a step can be
replayed after a crash or a kubelet restart.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import ipaddress

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from runtime.network.errors import NetworkError

# Routes we add carry this protocol number, so we find (and remove) exactly ours, across restarts,
# without keeping a list on disk. 75 is not assigned in iproute2's rt_protos.
RTPROT_KUBELITE = 75
POD_IFNAME = "eth0"


def host_veth_name(pod_uid: str) -> str:
    """The node end of a pod's veth pair: stable for a uid, 14 characters (IFNAMSIZ allows 15)."""
    return "klv" + hashlib.sha256(pod_uid.encode()).hexdigest()[:11]


def index_of(ip: IPRoute, ifname: str) -> int | None:
    found = ip.link_lookup(ifname=ifname)
    return int(found[0]) if found else None


def ensure_bridge(ip: IPRoute, name: str, *, gateway: str, prefixlen: int) -> int:
    index = index_of(ip, name)
    if index is None:
        ip.link("add", ifname=name, kind="bridge")
        index = index_of(ip, name)
        assert index is not None
    for addr in ip.get_addr(index=index, family=2):
        if (addr.get("address"), addr["prefixlen"]) != (gateway, prefixlen):  # a pod CIDR that changed
            ip.addr("del", index=index, address=addr.get("address"), prefixlen=addr["prefixlen"])
    add_address(ip, index, gateway, prefixlen)
    ip.link("set", index=index, state="up")
    return index


def add_address(ip: IPRoute, index: int, address: str, prefixlen: int) -> None:
    try:
        ip.addr("add", index=index, address=address, prefixlen=prefixlen)
    except NetlinkError as err:
        if err.code != errno.EEXIST:
            raise


def bridge_ports(ip: IPRoute, bridge: int) -> list[tuple[int, str]]:
    return [(int(link["index"]), str(link.get("ifname"))) for link in ip.get_links() if link.get("master") == bridge]


def plug(ip: IPRoute, index: int, bridge: int) -> None:
    """Port on the bridge, up, hairpin on (a pod reaching its own hostPort comes back through its port)."""
    ip.link("set", index=index, master=bridge, state="up")
    ip.brport("set", index=index, mode=1)  # IFLA_BRPORT_MODE: hairpin


def create_veth(ip: IPRoute, host_name: str, pod_netns: str) -> bool:
    """The pair with its peer created directly in the pod's namespace as eth0; False if it existed."""
    if index_of(ip, host_name) is not None:
        return False
    ip.link("add", ifname=host_name, kind="veth", peer={"ifname": POD_IFNAME, "net_ns_fd": pod_netns})
    return True


def delete_link(ip: IPRoute, ifname: str) -> bool:
    index = index_of(ip, ifname)
    if index is None:
        return False
    try:
        ip.link("del", index=index)
    except NetlinkError as err:
        if err.code != errno.ENODEV:
            raise
    return True


def configure_pod(pod: IPRoute, *, address: str, prefixlen: int, gateway: str) -> None:
    """Inside the pod: lo up, eth0 with its address and up, default route via the bridge."""
    lo = index_of(pod, "lo")
    if lo is not None:
        pod.link("set", index=lo, state="up")
    eth0 = index_of(pod, POD_IFNAME)
    if eth0 is None:
        raise NetworkError(f"the pod's namespace has no {POD_IFNAME}")
    add_address(pod, eth0, address, prefixlen)
    pod.link("set", index=eth0, state="up")
    pod.route("replace", dst="0.0.0.0/0", gateway=gateway, oif=eth0)


def our_routes(ip: IPRoute) -> dict[str, str]:
    """podCIDR -> gateway of the routes we added (by their protocol number)."""
    routes: dict[str, str] = {}
    for route in ip.get_routes(family=2, proto=RTPROT_KUBELITE):
        if route["proto"] != RTPROT_KUBELITE:
            continue
        dst = f"{route.get('dst')}/{route['dst_len']}"
        routes[str(ipaddress.ip_network(dst))] = str(route.get("gateway"))
    return routes


def replace_route(ip: IPRoute, dst: str, gateway: str) -> None:
    ip.route("replace", dst=dst, gateway=gateway, proto=RTPROT_KUBELITE)


def delete_route(ip: IPRoute, dst: str) -> None:
    with contextlib.suppress(NetlinkError):  # already gone
        ip.route("del", dst=dst, proto=RTPROT_KUBELITE)
