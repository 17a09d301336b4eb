"""The service dataplane on the real kernel: three simulated hosts, pods on them, real traffic.

Hosts kltest-node1..3 (198.51.100.11-13) on the root bridge kltest-br0, each with the pod
network (bridge kl0, host-gw routes) of runtime.network; pods are network namespaces
(kltest-p-*) serving busybox httpd (a CGI answers "<pod> <client address>") and a UDP echo
that names the pod. A real API server holds the Services and hand-written EndpointSlices; the
proxier of node1 runs in this test's event loop and programs node1's namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from api.client import Client
from api.errors import NotFound
from api.meta import ObjectMeta
from api.services import (
    SERVICE_NAME_LABEL,
    ClientIPConfig,
    Endpoint,
    EndpointConditions,
    EndpointSlice,
    EndpointSlicePort,
    Service,
    ServicePort,
    ServiceSpec,
    SessionAffinityConfig,
)
from cli.local.fabric import Fabric
from proxy.proxier import Proxier
from proxy.rules import TABLE, Context
from runtime.network import NetworkError, NodeNetwork
from tests.support.netns import in_ns, sh

pytestmark = pytest.mark.root

NODE1, NODE2, NODE3 = "kltest-node1", "kltest-node2", "kltest-node3"
ADDR = {NODE1: "198.51.100.11", NODE2: "198.51.100.12", NODE3: "198.51.100.13"}
CIDR = {NODE1: "10.244.1.0/24", NODE2: "10.244.2.0/24", NODE3: "10.244.3.0/24"}
# pod -> host; addresses follow from the attach order below
PODS = {"a": NODE1, "b": NODE2, "c": NODE3, "d": NODE3}
HTTP, UDP = 8080, 5353

UDP_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[2])))
while True:
    data, peer = s.recvfrom(100)
    s.sendto(sys.argv[1].encode(), peer)
"""
UDP_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 40053))
s.settimeout(1)
s.sendto(b"?", (sys.argv[1], int(sys.argv[2])))
try:
    print(s.recv(100).decode())
except TimeoutError:
    print("timeout")
"""


def who(ns: str, address: str, port: int = 80) -> str:
    """'<pod> <client address as the pod saw it>', or '' when nothing answered."""
    out = in_ns(ns, "busybox", "nc", "-w", "2", address, str(port), check=False,
                input="GET /cgi-bin/who HTTP/1.0\r\n\r\n").stdout
    lines = [line for line in out.splitlines() if line.startswith("pod ")]
    # busybox httpd listens on IPv6 and writes IPv4 clients as [::ffff:a.b.c.d]
    return lines[-1].removeprefix("pod ").replace("[::ffff:", "").replace("]", "") if lines else ""


def served_by(ns: str, address: str, port: int = 80, *, count: int = 20) -> Counter[str]:
    return Counter(who(ns, address, port).split(" ")[0] for _ in range(count))


def udp_ask(ns: str, address: str, port: int) -> str:
    return in_ns(ns, sys.executable, "-c", UDP_CLIENT, address, str(port)).stdout.strip()


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    """Three hosts with pod networks and the pods' servers; pod name -> pod IP."""
    fabric = Fabric("kltest")
    root = Path(tempfile.mkdtemp(prefix="kltest-proxy-"))
    nets: list[NodeNetwork] = []
    procs: list[subprocess.Popen[bytes]] = []
    ips: dict[str, str] = {}
    try:
        fabric.create(3)
        for host in (NODE1, NODE2, NODE3):
            net = NodeNetwork(root / host, pod_cidr=CIDR[host], node_ip=ADDR[host], node_netns=host)
            net.setup()
            net.set_routes({CIDR[h]: ADDR[h] for h in CIDR if h != host})
            nets.append(net)
        for name, host in PODS.items():
            ns = f"kltest-p-{name}"
            sh("ip", "netns", "add", ns)
            ips[name] = nets[[NODE1, NODE2, NODE3].index(host)].attach(f"uid-{name}", f"/run/netns/{ns}")
            www = root / f"www-{name}"
            (www / "cgi-bin").mkdir(parents=True)
            script = www / "cgi-bin" / "who"
            script.write_text(f'#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\npod {name} %s\\n" '
                              '"$REMOTE_ADDR"\n')
            script.chmod(0o755)
            procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", str(HTTP),
                                           "-h", str(www)]))
            procs.append(subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", UDP_SERVER, name,
                                           str(UDP)]))
        for name in PODS:
            deadline = time.monotonic() + 5
            while not who(f"kltest-p-{name}", "127.0.0.1", HTTP).startswith(name):
                assert time.monotonic() < deadline, f"httpd in pod {name} did not start"
                time.sleep(0.05)
        yield ips
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        for name in PODS:
            sh("ip", "netns", "del", f"kltest-p-{name}", check=False)
        for net in nets:
            with contextlib.suppress(NetworkError):
                net.teardown()
        fabric.destroy()
        shutil.rmtree(root, ignore_errors=True)


def service(name: str, ip: str, *, port: int = 80, protocol: str = "TCP", node_port: int | None = None,
            **spec: object) -> Service:
    target = UDP if protocol == "UDP" else HTTP
    return Service(metadata=ObjectMeta(name=name, namespace="default"),
                   spec=ServiceSpec(cluster_ip=ip, cluster_ips=[ip], type="NodePort" if node_port else "ClusterIP",
                                    ports=[ServicePort(name="p", port=port, protocol=protocol, target_port=target,
                                                       node_port=node_port)],
                                    **spec))  # type: ignore[arg-type]


def endpoint_slice(svc: str, ips: dict[str, str], pods: dict[str, bool], *, protocol: str = "TCP") -> EndpointSlice:
    """The slice of `svc` listing `pods` (name -> ready)."""
    return EndpointSlice(
        metadata=ObjectMeta(name=f"{svc}-kltest", namespace="default", labels={SERVICE_NAME_LABEL: svc}),
        address_type="IPv4",
        ports=[EndpointSlicePort(name="p", port=UDP if protocol == "UDP" else HTTP, protocol=protocol)],
        endpoints=[Endpoint(addresses=[ips[p]], node_name=PODS[p],
                            conditions=EndpointConditions(ready=ready, serving=ready, terminating=False))
                   for p, ready in pods.items()])


async def put_slice(client: Client, es: EndpointSlice) -> None:
    name = es.metadata.name or ""
    try:
        current = await client.get(EndpointSlice, name, namespace="default")
    except NotFound:
        await client.create(es)
        return
    es.metadata.resource_version = current.metadata.resource_version
    await client.update(es)


def table(host: str = NODE1) -> str:
    return in_ns(host, "nft", "list", "table", "ip", TABLE, check=False).stdout


async def until(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def proxier(client: Client, **settings: float) -> AsyncIterator[Proxier]:
    p = Proxier(client, Context(node_name=NODE1), netns_path=f"/run/netns/{NODE1}", **settings)
    task = asyncio.create_task(p.run())
    try:
        await asyncio.wait_for(p.synced.wait(), 10)
        yield p
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await p.teardown()


async def test_cluster_ip_spreads_drains_skips_unready_and_refuses_without_endpoints(
        cluster: dict[str, str], client: Client) -> None:
    await client.create(service("web", "10.43.0.20"))
    await client.create(service("empty", "10.43.0.21"))
    await put_slice(client, endpoint_slice("web", cluster, {"b": True, "c": True, "d": False}))
    async with proxier(client):
        await until(lambda: cluster["c"] in table(), "the endpoints in node1's table")
        spread = served_by("kltest-p-a", "10.43.0.20")
        assert set(spread) == {"b", "c"} and min(spread.values()) >= 3, spread  # both, never the unready d

        await put_slice(client, endpoint_slice("web", cluster, {"b": True, "d": False}))
        await until(lambda: cluster["c"] not in table(), "c's removal")
        assert set(served_by("kltest-p-a", "10.43.0.20")) == {"b"}  # no new connection reaches c

        started = time.monotonic()
        refused = in_ns("kltest-p-a", "busybox", "nc", "-w", "3", "10.43.0.21", "80", check=False, input="x")
        assert time.monotonic() - started < 1 and "refused" in refused.stderr.lower(), refused
    assert TABLE not in in_ns(NODE1, "nft", "list", "tables").stdout  # teardown left nothing


async def test_affinity_hairpin_node_ports_and_external_traffic_policy(cluster: dict[str, str],
                                                                       client: Client) -> None:
    sticky = service("sticky", "10.43.0.30", session_affinity="ClientIP",
                     session_affinity_config=SessionAffinityConfig(client_ip=ClientIPConfig(timeout_seconds=30)))
    await client.create(sticky)
    await put_slice(client, endpoint_slice("sticky", cluster, {"b": True, "c": True}))
    await client.create(service("self", "10.43.0.31"))
    await put_slice(client, endpoint_slice("self", cluster, {"a": True}))
    await client.create(service("np", "10.43.0.32", node_port=30080))
    await put_slice(client, endpoint_slice("np", cluster, {"b": True, "c": True}))
    await client.create(service("local", "10.43.0.33", node_port=30081, external_traffic_policy="Local"))
    await put_slice(client, endpoint_slice("local", cluster, {"a": True, "b": True}))
    async with proxier(client):
        await until(lambda: "30081" in table() and "10.43.0.30" in table(), "the services in node1's table")
        first = served_by("kltest-p-a", "10.43.0.30", count=12)
        assert len(first) == 1, first  # ClientIP affinity sticks to one backend

        assert who("kltest-p-a", "10.43.0.31").startswith("a ")  # hairpin: a reaches itself

        node1 = ADDR[NODE1]
        assert set(served_by(NODE2, node1, 30080, count=12)) == {"b", "c"}  # another host
        assert who(NODE1, node1, 30080).split(" ")[0] in ("b", "c")  # the node itself
        assert who(NODE1, "127.0.0.1", 30080).split(" ")[0] in ("b", "c")  # and its loopback

        seen = Counter(who(NODE3, node1, 30081) for _ in range(8))
        assert seen == Counter({f"a {ADDR[NODE3]}": 8}), seen  # local endpoint only, client address kept


async def test_udp_conntrack_flushed_when_its_endpoint_goes(cluster: dict[str, str], client: Client) -> None:
    await client.create(service("dns", "10.43.0.40", port=53, protocol="UDP"))
    await put_slice(client, endpoint_slice("dns", cluster, {"c": True}, protocol="UDP"))
    async with proxier(client):
        await until(lambda: cluster["c"] in table(), "the UDP service in node1's table")
        assert udp_ask("kltest-p-a", "10.43.0.40", 53) == "c"
        assert cluster["c"] in in_ns(NODE1, "conntrack", "-L", "-p", "udp", "--orig-dst", "10.43.0.40").stdout
        await put_slice(client, endpoint_slice("dns", cluster, {"b": True}, protocol="UDP"))
        await until(lambda: cluster["c"] not in table(), "c's removal")
        entries = in_ns(NODE1, "conntrack", "-L", "-p", "udp", "--orig-dst", "10.43.0.40", check=False).stdout
        assert cluster["c"] not in entries  # flushed: the same client port now reaches b
        assert udp_ask("kltest-p-a", "10.43.0.40", 53) == "b"
    left = in_ns(NODE1, "conntrack", "-L", "--orig-dst", "10.43.0.0", "--mask-dst", "255.255.0.0", check=False)
    assert "10.43." not in left.stdout  # teardown: no entry of ours either
    assert "10.43.0.0/16" not in in_ns(NODE1, "ip", "route").stdout


async def test_resync_repairs_a_flushed_or_deleted_table(cluster: dict[str, str], client: Client) -> None:
    await client.create(service("web", "10.43.0.50"))
    await put_slice(client, endpoint_slice("web", cluster, {"b": True}))
    async with proxier(client, resync_period=0.5):
        await until(lambda: cluster["b"] in table(), "the service in node1's table")
        assert who("kltest-p-a", "10.43.0.50").startswith("b ")
        in_ns(NODE1, "nft", "flush", "table", "ip", TABLE)
        assert who("kltest-p-a", "10.43.0.50") == ""
        await until(lambda: who("kltest-p-a", "10.43.0.50").startswith("b "), "the flushed table's repair")
        in_ns(NODE1, "nft", "delete", "table", "ip", TABLE)
        await until(lambda: cluster["b"] in table(), "the deleted table's repair")
        assert who("kltest-p-a", "10.43.0.50").startswith("b ")


async def test_endpoint_outside_the_cluster_cidr_is_reached_through_masquerade(cluster: dict[str, str],
                                                                               client: Client) -> None:
    """Like the `kubernetes` Service (-> the API server on the control plane, 198.51.100.1): the root
    namespace routes pod addresses to unreachable, so only a masqueraded connection gets an answer."""
    server = await asyncio.start_server(_tell_peer, "198.51.100.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await client.create(service("apiserver", "10.43.0.60", port=443))
        await put_slice(client, EndpointSlice(
            metadata=ObjectMeta(name="apiserver-kltest", namespace="default", labels={SERVICE_NAME_LABEL: "apiserver"}),
            address_type="IPv4", ports=[EndpointSlicePort(name="p", port=port, protocol="TCP")],
            endpoints=[Endpoint(addresses=["198.51.100.1"], conditions=EndpointConditions(ready=True))]))
        async with proxier(client):
            await until(lambda: f"198.51.100.1:{port}" in table(), "the outside endpoint in node1's table")
            out = await asyncio.to_thread(in_ns, "kltest-p-a", "busybox", "nc", "-w", "2", "10.43.0.60", "443",
                                          check=False, input="\n")
            assert out.stdout.strip() == ADDR[NODE1]  # the server saw node1's address, and could answer it
    finally:
        server.close()
        await server.wait_closed()


async def _tell_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(f"{writer.get_extra_info('peername')[0]}\n".encode())
    await writer.drain()
    writer.close()
