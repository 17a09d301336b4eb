"""Pod network plumbing on the real kernel: pods on a node, hostPorts, two simulated hosts.

Everything lives in namespaces these tests create (all named kltest-*): two simulated hosts
kltest-h1 and kltest-h2 on a root bridge kltest-br0 in 198.51.100.0/24 (TEST-NET-2), pods as
namespaces of their own. The node bridges, pod routes and nft tables are inside the host
namespaces; the root namespace gets only the bridge, two veths and the safety route
`unreachable 10.244.0.0/16`. Nothing masquerades, nothing has a default route out.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.network import HostPort, NetworkError, NodeNetwork, nft
from runtime.network.links import RTPROT_KUBELITE, host_veth_name
from tests.support.netns import in_ns, sh

pytestmark = pytest.mark.root

ROOT_BRIDGE = "kltest-br0"
HOSTS = {"kltest-h1": "198.51.100.11", "kltest-h2": "198.51.100.12"}
CIDRS = {"kltest-h1": "10.244.1.0/24", "kltest-h2": "10.244.2.0/24"}
CLUSTER_CIDR = "10.244.0.0/16"


def ping(ns: str, address: str) -> bool:
    return in_ns(ns, "busybox", "ping", "-c1", "-W1", address, check=False).returncode == 0


def http_get(ns: str, address: str, port: int) -> str:
    return in_ns(ns, "busybox", "nc", "-w", "2", address, str(port), check=False,
                 input="GET / HTTP/1.0\r\n\r\n").stdout


@pytest.fixture(scope="module")
def hosts() -> Iterator[dict[str, str]]:
    """Two simulated hosts on a root bridge; the cluster CIDR is unreachable from the root namespace."""
    added_unreachable = False
    try:
        if CLUSTER_CIDR not in sh("ip", "route", "show", "type", "unreachable").stdout:
            sh("ip", "route", "add", "unreachable", CLUSTER_CIDR)
            added_unreachable = True
        sh("ip", "link", "add", ROOT_BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", "198.51.100.1/24", "dev", ROOT_BRIDGE)
        sh("ip", "link", "set", ROOT_BRIDGE, "up")
        for name, address in HOSTS.items():
            sh("ip", "netns", "add", name)
            sh("ip", "link", "add", f"{name}v", "type", "veth", "peer", "name", "eth0", "netns", name)
            sh("ip", "link", "set", f"{name}v", "master", ROOT_BRIDGE, "up")
            in_ns(name, "ip", "link", "set", "lo", "up")
            in_ns(name, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
            in_ns(name, "ip", "link", "set", "eth0", "up")
        yield HOSTS
    finally:
        for name in HOSTS:
            sh("ip", "link", "del", f"{name}v", check=False)
            sh("ip", "netns", "del", name, check=False)
        sh("ip", "link", "del", ROOT_BRIDGE, check=False)
        if added_unreachable:
            sh("ip", "route", "del", "unreachable", CLUSTER_CIDR, check=False)


@pytest.fixture
def pod_ns() -> Iterator[Callable[[str], str]]:
    """Makes pod namespaces kltest-p-<name>; returns the namespace file path."""
    made: list[str] = []

    def make(name: str) -> str:
        ns = f"kltest-p-{name}"
        sh("ip", "netns", "add", ns)
        made.append(ns)
        return f"/run/netns/{ns}"

    yield make
    for ns in made:
        sh("ip", "netns", "del", ns, check=False)


@pytest.fixture
def node(hosts: dict[str, str], tmp_path: Path) -> Iterator[Callable[[str], NodeNetwork]]:
    """A NodeNetwork per simulated host (set up), torn down after the test whatever happened."""
    made: list[NodeNetwork] = []

    def make(host: str) -> NodeNetwork:
        net = NodeNetwork(tmp_path / host, pod_cidr=CIDRS[host], node_ip=hosts[host], node_netns=host)
        made.append(net)
        net.setup()
        return net

    yield make
    for net in made:
        with contextlib.suppress(NetworkError):
            net.teardown()


@pytest.fixture
def httpd(tmp_path: Path) -> Iterator[Callable[[str, int], None]]:
    """Starts busybox httpd in a pod namespace, serving a page that names the pod."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(ns_path: str, port: int) -> None:
        ns = Path(ns_path).name
        root = tmp_path / f"www-{ns}"
        root.mkdir()
        (root / "index.html").write_text(f"hello from {ns}\n")
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", str(port),
                                       "-h", str(root)]))
        deadline = time.monotonic() + 5
        while "hello" not in http_get(ns, "127.0.0.1", port):
            assert time.monotonic() < deadline, f"httpd in {ns} did not start"
            time.sleep(0.05)

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def _node_state(host: str) -> dict[str, str]:
    return {
        "links": in_ns(host, "ip", "-o", "link").stdout,
        "routes": in_ns(host, "ip", "route", "show", "proto", str(RTPROT_KUBELITE)).stdout,
        "nft": in_ns(host, "nft", "list", "tables").stdout,
    }


def test_two_pods_on_one_node_reach_each_other(node: Callable[[str], NodeNetwork],
                                               pod_ns: Callable[[str], str]) -> None:
    net = node("kltest-h1")
    a, b = pod_ns("a"), pod_ns("b")
    ip_a = net.attach("uid-a", a)
    ip_b = net.attach("uid-b", b)
    assert (ip_a, ip_b) == ("10.244.1.2", "10.244.1.3")
    assert net.attach("uid-a", a) == ip_a  # idempotent
    assert f"inet {ip_a}/24" in in_ns("kltest-p-a", "ip", "-o", "addr", "show", "eth0").stdout
    assert "default via 10.244.1.1" in in_ns("kltest-p-a", "ip", "route").stdout
    assert ping("kltest-p-a", ip_b) and ping("kltest-p-b", ip_a)
    assert ping("kltest-p-a", "198.51.100.11")  # the node, through the gateway
    hairpin = in_ns("kltest-h1", "bridge", "-d", "link", "show", "dev", host_veth_name("uid-a")).stdout
    assert "hairpin on" in hairpin
    assert net.allocated() == {"uid-a": ip_a, "uid-b": ip_b}


def test_host_port_answers_on_the_node(node: Callable[[str], NodeNetwork], pod_ns: Callable[[str], str],
                                       httpd: Callable[[str, int], None], tmp_path: Path) -> None:
    net = node("kltest-h1")
    web, other = pod_ns("web"), pod_ns("other")
    net.attach("uid-web", web, host_ports=[HostPort(4000, 8080)])
    httpd(web, 8080)
    net.attach("uid-other", other)
    assert "hello from kltest-p-web" in http_get("kltest-h1", "198.51.100.11", 4000)  # output chain
    assert "hello from kltest-p-web" in http_get("kltest-h1", "127.0.0.1", 4000)  # docker -p on localhost
    assert "hello from kltest-p-web" in http_get("kltest-h2", "198.51.100.11", 4000)  # prerouting
    assert "hello from kltest-p-web" in http_get("kltest-p-other", "198.51.100.11", 4000)  # pod to hostPort
    assert "hello from kltest-p-web" in http_get("kltest-p-web", "198.51.100.11", 4000)  # hairpin

    taken = pod_ns("taken")
    with pytest.raises(NetworkError, match=r"failed to attach pod uid-taken to bridge kl0: host ports 4000/TCP"):
        net.attach("uid-taken", taken, host_ports=[HostPort(4000, 80)])
    assert "uid-taken" not in net.allocated()  # the failed attach undid itself
    assert "eth0" not in in_ns("kltest-p-taken", "ip", "-o", "link").stdout

    # A restarted kubelet: a new instance over the same state replays the hostPorts into a fresh table.
    again = NodeNetwork(tmp_path / "kltest-h1", pod_cidr=CIDRS["kltest-h1"], node_ip="198.51.100.11",
                        node_netns="kltest-h1")
    again.setup()
    assert again.allocated() == net.allocated()
    assert again.attach("uid-web", web, host_ports=[HostPort(4000, 8080)]) == "10.244.1.2"
    assert "hello from kltest-p-web" in http_get("kltest-h2", "198.51.100.11", 4000)
    held = set(net.allocated().values())
    assert again.attach("uid-new", pod_ns("new")) not in held  # no double allocation

    again.detach("uid-web")
    assert http_get("kltest-h1", "198.51.100.11", 4000) == ""
    assert "4000" not in in_ns("kltest-h1", "nft", "list", "map", "ip", "kubelite", "hostports").stdout


def test_pods_on_two_hosts_reach_each_other_through_host_gw_routes(node: Callable[[str], NodeNetwork],
                                                                   pod_ns: Callable[[str], str]) -> None:
    h1, h2 = node("kltest-h1"), node("kltest-h2")
    ip1 = h1.attach("uid-1", pod_ns("one"))
    ip2 = h2.attach("uid-2", pod_ns("two"))
    assert not ping("kltest-p-one", ip2)
    peers = {CIDRS[h]: HOSTS[h] for h in HOSTS}
    h1.set_routes(peers)
    h2.set_routes(peers)
    h1.set_routes(peers)  # idempotent
    assert ping("kltest-p-one", ip2) and ping("kltest-p-two", ip1)
    routes = in_ns("kltest-h1", "ip", "route", "show", "proto", str(RTPROT_KUBELITE)).stdout
    assert routes.split() == ["10.244.2.0/24", "via", "198.51.100.12", "dev", "eth0"]
    h1.set_routes({"10.244.3.0/24": "198.51.100.13"})  # the stale route to h2 goes
    routes = in_ns("kltest-h1", "ip", "route", "show", "proto", str(RTPROT_KUBELITE)).stdout
    assert "10.244.2.0/24" not in routes and "10.244.3.0/24" in routes
    assert not ping("kltest-p-one", ip2)


def test_detach_and_teardown_leave_nothing(node: Callable[[str], NodeNetwork], pod_ns: Callable[[str], str],
                                           tmp_path: Path) -> None:
    before = _node_state("kltest-h1")
    net = node("kltest-h1")
    a, b = pod_ns("a"), pod_ns("b")
    net.attach("uid-a", a, host_ports=[HostPort(4000, 80), HostPort(5353, 53, "UDP")])
    net.attach("uid-b", b, host_ports=[HostPort(4001, 80)])
    net.set_routes({"10.244.2.0/24": "198.51.100.12"})

    net.detach("uid-a")
    net.detach("uid-a")  # idempotent
    assert host_veth_name("uid-a") not in in_ns("kltest-h1", "ip", "-o", "link").stdout
    assert "eth0" not in in_ns("kltest-p-a", "ip", "-o", "link").stdout
    hostports = in_ns("kltest-h1", "nft", "list", "map", "ip", "kubelite", "hostports").stdout
    assert "4000" not in hostports and "5353" not in hostports and "4001" in hostports
    assert net.allocated() == {"uid-b": "10.244.1.3"}

    in_ns("kltest-h1", "ip", "link", "add", "klvstray", "type", "veth", "peer", "name", "klvstray-p")
    in_ns("kltest-h1", "ip", "link", "set", "klvstray", "master", "kl0")
    assert net.gc(["uid-b"]) == []
    assert "klvstray" not in in_ns("kltest-h1", "ip", "-o", "link").stdout  # a port no pod owns
    assert net.gc([]) == ["uid-b"]
    assert net.allocated() == {}

    net.attach("uid-c", pod_ns("c"), host_ports=[HostPort(4002, 80)])
    net.teardown()
    net.teardown()  # idempotent
    assert _node_state("kltest-h1") == before
    assert not (tmp_path / "kltest-h1" / "ipam").exists()
    assert "eth0" not in in_ns("kltest-p-c", "ip", "-o", "link").stdout


def test_attach_failures_name_the_pod_and_undo(node: Callable[[str], NodeNetwork]) -> None:
    net = node("kltest-h1")
    with pytest.raises(NetworkError, match=r"^failed to attach pod uid-x to bridge kl0: ") as info:
        net.attach("uid-x", "/run/netns/kltest-does-not-exist")
    assert info.value.__cause__ is not None
    assert net.allocated() == {}
    assert host_veth_name("uid-x") not in in_ns("kltest-h1", "ip", "-o", "link").stdout


def test_attach_before_setup_fails_and_leaves_nothing(hosts: dict[str, str], pod_ns: Callable[[str], str],
                                                      tmp_path: Path) -> None:
    net = NodeNetwork(tmp_path, pod_cidr="10.244.1.0/24", node_ip=hosts["kltest-h1"], node_netns="kltest-h1")
    pod = pod_ns("early")
    with pytest.raises(NetworkError, match=r"failed to attach pod uid-e to bridge kl0: bridge kl0 does not exist"):
        net.attach("uid-e", pod)
    assert net.allocated() == {}
    assert host_veth_name("uid-e") not in in_ns("kltest-h1", "ip", "-o", "link").stdout
    assert "eth0" not in in_ns("kltest-p-early", "ip", "-o", "link").stdout


async def test_concurrent_attaches_from_the_event_loop(node: Callable[[str], NodeNetwork],
                                                       pod_ns: Callable[[str], str]) -> None:
    """As the kubelet calls it: blocking calls in threads, many pods at once."""
    net = node("kltest-h1")
    paths = {f"uid-{i}": pod_ns(f"c{i}") for i in range(8)}
    started = time.monotonic()
    ips = await asyncio.gather(*(asyncio.to_thread(net.attach, uid, path) for uid, path in paths.items()))
    elapsed = time.monotonic() - started
    assert len(set(ips)) == len(ips)
    assert net.allocated() == dict(zip(paths, ips, strict=True))
    assert ping("kltest-p-c0", ips[-1])
    assert elapsed < 5, f"8 attaches took {elapsed:.1f}s"
    await asyncio.gather(*(asyncio.to_thread(net.detach, uid) for uid in paths))
    assert net.allocated() == {}


def test_a_node_that_is_its_own_namespace(hosts: dict[str, str], pod_ns: Callable[[str], str],
                                          tmp_path: Path) -> None:
    """node_netns=None, as on a real machine: here a process started inside kltest-h2."""
    pod = pod_ns("solo")
    script = f"""
import pathlib, subprocess
from runtime.network import NodeNetwork
net = NodeNetwork(pathlib.Path({str(tmp_path)!r}), pod_cidr="10.244.2.0/24", node_ip="198.51.100.12")
try:
    net.setup()
    ip = net.attach("uid-solo", {pod!r})
    subprocess.run(["busybox", "ping", "-c1", "-W1", ip], check=True, capture_output=True)
    print("reached", ip)
finally:
    net.teardown()
"""
    result = in_ns("kltest-h2", sys.executable, "-c", script, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reached 10.244.2.2" in result.stdout
    assert "kl0" not in in_ns("kltest-h2", "ip", "-o", "link").stdout
    assert "kubelite" not in in_ns("kltest-h2", "nft", "list", "tables").stdout


def test_the_outward_masquerade_ruleset_is_valid(hosts: dict[str, str]) -> None:
    """Checked by the kernel (nft -c) but never applied: no test masquerades."""
    script = nft.base_ruleset(bridge="kl0", pod_cidr="10.244.1.0/24", masquerade=True)
    script += nft.set_peers(["10.244.2.0/24"])
    result = in_ns("kltest-h1", "nft", "-c", "-f", "-", input=script, check=False)
    assert result.returncode == 0, result.stderr
    assert "kubelite" not in in_ns("kltest-h1", "nft", "list", "tables").stdout
