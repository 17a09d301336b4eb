"""The cluster DNS against a real etcd and a secured API server, queried with real `dig`.

The DNS server runs in the test's event loop on a loopback port, as system:kube-dns (the identity
`kubelite server` gives it), so these tests also prove that identity may do what DNS needs.
Objects are written through the API with the admin identity; clusterIPs are set explicitly.
An upstream resolver for forwarding is a tiny dnslib server on loopback, in the same loop.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from dnslib import RR, DNSRecord
from dnslib import A as DnsA

from api.client import Client
from api.core import Pod, PodStatus
from api.errors import NotFound
from api.services import SERVICE_NAME_LABEL, Endpoints, EndpointSlice, Service
from apiserver.auth.pki import ADMIN, DNS
from dns.forward import Address
from dns.run import DnsOptions, run_dns
from tests.support.secure import SecureApiServer

pytestmark = pytest.mark.skipif(shutil.which("dig") is None, reason="needs dig (apt install bind9-dnsutils)")

ZONE = "cluster.local"


@dataclass
class Dig:
    status: str
    flags: set[str]
    answer: list[list[str]]
    authority: list[list[str]]
    text: str

    def data(self) -> list[str]:
        return sorted(" ".join(rr[4:]) for rr in self.answer)


async def dig(port: int, *args: str) -> Dig:
    proc = await asyncio.create_subprocess_exec(
        "dig", "@127.0.0.1", "-p", str(port), "+time=2", "+tries=1", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode()
    status = re.search(r"status: (\w+)", text)
    flags = re.search(r";; flags: ([a-z ]*);", text)
    sections: dict[str, list[list[str]]] = {"ANSWER": [], "AUTHORITY": []}
    current = None
    for line in text.splitlines():
        head = re.match(r";; (\w+) SECTION:", line)
        if head:
            current = head.group(1)
            continue
        if not line.strip():
            current = None
        elif current in sections and not line.startswith(";"):
            sections[current].append(line.split())
    return Dig(status.group(1) if status else "NONE", set(flags.group(1).split()) if flags else set(),
               sections["ANSWER"], sections["AUTHORITY"], text)


class Upstream(asyncio.DatagramProtocol):
    """A resolver for the outside world: `*.example.org` A 203.0.113.7 (TTL 60), else NXDOMAIN."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        request = DNSRecord.parse(data)
        name = str(request.q.qname)
        self.queries.append(name)
        reply = request.reply()
        if name.lower().endswith("example.org."):
            reply.add_answer(RR(request.q.qname, 1, rdata=DnsA("203.0.113.7"), ttl=60))
        else:
            reply.header.rcode = 3
        assert self.transport is not None
        self.transport.sendto(reply.pack(), addr)


@asynccontextmanager
async def upstream_server() -> AsyncIterator[tuple[Upstream, Address]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Upstream, local_addr=("127.0.0.1", 0))
    try:
        yield protocol, transport.get_extra_info("sockname")[:2]
    finally:
        transport.close()


@asynccontextmanager
async def dns_server(secure: SecureApiServer, upstreams: list[Address]) -> AsyncIterator[int]:
    """`kubelite dns` in this loop, as system:kube-dns, on a free loopback port; yields the port."""
    options = DnsOptions(bind="127.0.0.1", port=0, upstreams=upstreams)
    stop = asyncio.Event()
    async with Client(secure.url, ssl=secure.ssl_for(DNS)) as client:
        task = asyncio.create_task(run_dns(client, options, stop=stop))
        started = asyncio.create_task(options.started.wait())
        await asyncio.wait([task, started], timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        assert options.started.is_set(), "the DNS server did not start"
        assert options.bound_port is not None
        try:
            yield options.bound_port
        finally:
            stop.set()
            started.cancel()
            await asyncio.wait_for(task, 10)


@pytest.fixture
async def admin(secure: SecureApiServer) -> AsyncIterator[Client]:
    async with Client(secure.url, ssl=secure.ssl_for(ADMIN)) as c:
        yield c


def service(name: str, *, cluster_ip: str = "None", ports: list[dict[str, object]] | None = None,
            namespace: str = "default", **spec: object) -> Service:
    return Service.from_dict({"metadata": {"name": name, "namespace": namespace},
                              "spec": {"clusterIP": cluster_ip, "type": "ClusterIP", **spec,
                                       "ports": ports if ports is not None else
                                       [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}})


def endpoint_slice(name: str, svc: str, addresses: list[str], *, ready: bool = True,
                   hostnames: list[str] | None = None) -> EndpointSlice:
    return EndpointSlice.from_dict({
        "metadata": {"name": name, "namespace": "default", "labels": {SERVICE_NAME_LABEL: svc}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [a], "conditions": {"ready": ready},
                       **({"hostname": hostnames[i]} if hostnames else {})} for i, a in enumerate(addresses)]})


async def eventually(check: object, timeout: float = 1.0) -> float:
    """Seconds until `await check()` is truthy; fails after `timeout`."""
    start = time.monotonic()
    while True:
        if await check():  # type: ignore[operator]
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout}s")
        await asyncio.sleep(0.02)


async def test_services_pods_and_negative_answers(secure: SecureApiServer, admin: Client) -> None:
    await admin.create(service("kltest-web", cluster_ip="10.43.0.50",
                               ports=[{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
                                      {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53}]))
    await admin.create(Service.from_dict({"metadata": {"name": "kltest-ext", "namespace": "default"},
                                          "spec": {"type": "ExternalName", "externalName": "db.example.org"}}))
    pod = await admin.create(Pod.from_dict({"metadata": {"name": "kltest-p", "namespace": "default"},
                                            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
    pod.status = PodStatus.from_dict({"podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}]})
    await admin.update_status(pod)
    async with dns_server(secure, []) as port:
        a = await dig(port, f"kltest-web.default.svc.{ZONE}", "A")
        assert a.status == "NOERROR" and "aa" in a.flags
        assert a.data() == ["10.43.0.50"]
        assert a.answer[0][1] == "5"  # TTL 5 s
        srv = await dig(port, f"_http._tcp.kltest-web.default.svc.{ZONE}", "SRV")
        assert srv.data() == [f"0 100 80 kltest-web.default.svc.{ZONE}."]
        udp_srv = await dig(port, f"_dns._udp.kltest-web.default.svc.{ZONE}", "SRV")
        assert udp_srv.data() == [f"0 100 53 kltest-web.default.svc.{ZONE}."]
        ptr = await dig(port, "-x", "10.43.0.50")
        assert ptr.data() == [f"kltest-web.default.svc.{ZONE}."]
        pod_ptr = await dig(port, "-x", "10.244.1.5")
        assert pod_ptr.data() == [f"10-244-1-5.default.pod.{ZONE}."]
        pod_a = await dig(port, f"10-244-1-5.default.pod.{ZONE}", "A")
        assert pod_a.data() == ["10.244.1.5"]
        cname = await dig(port, f"kltest-ext.default.svc.{ZONE}", "CNAME")
        assert cname.data() == ["db.example.org."]

        # NXDOMAIN: no such name; NODATA: the name exists, not with that type; both carry the SOA
        for name in (f"nope.default.svc.{ZONE}", f"kltest-web.nosuchns.svc.{ZONE}",
                     f"10-244-1-5.nosuchns.pod.{ZONE}", f"_http._udp.kltest-web.default.svc.{ZONE}"):
            nx = await dig(port, name, "A")
            assert nx.status == "NXDOMAIN", name
            assert nx.answer == [] and nx.authority[0][3] == "SOA", name
        for name, qtype in ((f"kltest-web.default.svc.{ZONE}", "AAAA"), (f"kltest-web.default.svc.{ZONE}", "TXT"),
                            (f"default.svc.{ZONE}", "A"), (f"svc.{ZONE}", "A"), (f"kube-system.svc.{ZONE}", "A"),
                            (f"_tcp.kltest-web.default.svc.{ZONE}", "SRV")):
            nodata = await dig(port, name, qtype)
            assert nodata.status == "NOERROR" and nodata.answer == [], (name, qtype)
            assert nodata.authority[0][3] == "SOA" and nodata.authority[0][0] == f"{ZONE}.", (name, qtype)
        soa = await dig(port, ZONE, "SOA")
        assert soa.answer[0][4] == f"ns.dns.{ZONE}."

        over_tcp = await dig(port, "+tcp", f"kltest-web.default.svc.{ZONE}", "A")
        assert over_tcp.data() == ["10.43.0.50"] and "(TCP)" in over_tcp.text


async def test_headless_truncates_over_udp_and_answers_over_tcp(secure: SecureApiServer, admin: Client) -> None:
    await admin.create(service("kltest-db", ports=[{"name": "http", "port": 80, "protocol": "TCP",
                                                    "targetPort": 8080}]))
    addresses = [f"10.244.2.{i}" for i in range(1, 41)]
    await admin.create(endpoint_slice("kltest-db-a", "kltest-db", addresses[:30]))
    await admin.create(endpoint_slice("kltest-db-b", "kltest-db", addresses[30:]))
    await admin.create(endpoint_slice("kltest-db-c", "kltest-db", ["10.244.2.99"], ready=False))
    await admin.create(service("kltest-sts"))
    await admin.create(endpoint_slice("kltest-sts-a", "kltest-sts", ["10.244.3.1", "10.244.3.2"],
                                      hostnames=["sts-0", "sts-1"]))
    async with dns_server(secure, []) as port:
        name = f"kltest-db.default.svc.{ZONE}"
        cut = await dig(port, "+noedns", "+ignore", name, "A")
        assert "tc" in cut.flags and cut.answer == []
        full = await dig(port, "+noedns", name, "A")  # dig retries over TCP on TC
        assert full.data() == sorted(addresses), "all 40 ready endpoints, not the unready one"
        assert "Truncated, retrying in TCP mode" in full.text
        edns = await dig(port, name, "A")  # 40 A records fit in dig's 1232-byte EDNS buffer
        assert "tc" not in edns.flags and len(edns.answer) == 40

        sts = await dig(port, f"sts-0.kltest-sts.default.svc.{ZONE}", "A")
        assert sts.data() == ["10.244.3.1"]
        srv = await dig(port, f"_http._tcp.kltest-sts.default.svc.{ZONE}", "SRV")
        assert srv.data() == [f"0 50 8080 sts-0.kltest-sts.default.svc.{ZONE}.",
                              f"0 50 8080 sts-1.kltest-sts.default.svc.{ZONE}."]
        generated = await dig(port, f"_http._tcp.{name}", "SRV")
        assert f"0 2 8080 10-244-2-7.{name}." in generated.data()
        assert (await dig(port, f"10-244-2-7.{name}", "A")).data() == ["10.244.2.7"]
        assert (await dig(port, "-x", "10.244.3.2")).data() == [f"sts-1.kltest-sts.default.svc.{ZONE}."]


async def test_api_changes_show_within_a_second(secure: SecureApiServer, admin: Client) -> None:
    async with dns_server(secure, []) as port:
        name = f"kltest-late.default.svc.{ZONE}"
        assert (await dig(port, name, "A")).status == "NXDOMAIN"
        await admin.create(service("kltest-late", cluster_ip="10.43.0.77"))

        async def answered() -> bool:
            return (await dig(port, name, "A")).data() == ["10.43.0.77"]

        await eventually(answered, timeout=1.0)
        await admin.create(service("kltest-hl"))
        await admin.create(endpoint_slice("kltest-hl-a", "kltest-hl", ["10.244.4.1"]))
        hl = f"kltest-hl.default.svc.{ZONE}"

        async def one() -> bool:
            return (await dig(port, hl, "A")).data() == ["10.244.4.1"]

        await eventually(one, timeout=1.0)
        eps = await admin.get(EndpointSlice, "kltest-hl-a", namespace="default")
        eps.endpoints[0].conditions.ready = False  # type: ignore[union-attr]
        await admin.update(eps)

        async def none_ready() -> bool:
            result = await dig(port, hl, "A")
            return result.status == "NOERROR" and result.answer == []

        await eventually(none_ready, timeout=1.0)
        await admin.delete(Service, "kltest-late", namespace="default")

        async def gone() -> bool:
            return (await dig(port, name, "A")).status == "NXDOMAIN"

        await eventually(gone, timeout=1.0)


async def test_forwarding_caching_and_servfail(secure: SecureApiServer, admin: Client) -> None:
    await admin.create(Service.from_dict({"metadata": {"name": "kltest-ext", "namespace": "default"},
                                          "spec": {"type": "ExternalName", "externalName": "db.example.org"}}))
    async with upstream_server() as (upstream, address), dns_server(secure, [address]) as port:
        first = await dig(port, "www.example.org", "A")
        assert first.status == "NOERROR" and first.data() == ["203.0.113.7"]
        again = await dig(port, "www.example.org", "A")
        assert again.data() == ["203.0.113.7"] and int(again.answer[0][1]) <= 60
        assert upstream.queries == ["www.example.org."], "the second answer came from the cache"
        missing = await dig(port, "nothing.invalid", "A")
        assert missing.status == "NXDOMAIN"
        # names in the zone are never forwarded
        await dig(port, f"nope.default.svc.{ZONE}", "A")
        assert f"nope.default.svc.{ZONE}." not in upstream.queries
        # an ExternalName: the zone's CNAME, then the upstream's answer for its target
        ext = await dig(port, f"kltest-ext.default.svc.{ZONE}", "A")
        assert [(rr[0], rr[3], rr[4]) for rr in ext.answer] == [
            (f"kltest-ext.default.svc.{ZONE}.", "CNAME", "db.example.org."), ("db.example.org.", "A", "203.0.113.7")]
    async with dns_server(secure, []) as port:
        failed = await dig(port, "www.example.org", "A")
        assert failed.status == "SERVFAIL"
        assert "no upstream resolvers configured" in failed.text  # the EDE text dig prints


async def test_kube_dns_service_and_endpoints_are_created_and_kept(secure: SecureApiServer, admin: Client) -> None:
    async with dns_server(secure, []) as port:
        async def stored() -> bool:
            try:
                await admin.get(Endpoints, "kube-dns", namespace="kube-system")
                return True
            except NotFound:
                return False

        await eventually(stored, timeout=5)
        svc = await admin.get(Service, "kube-dns", namespace="kube-system")
        assert svc.spec.cluster_ip == "10.43.0.10" and not svc.spec.selector
        assert [(p.name, p.protocol, p.port) for p in svc.spec.ports or []] == [("dns", "UDP", 53),
                                                                               ("dns-tcp", "TCP", 53)]
        slices = (await admin.list(EndpointSlice, namespace="kube-system",
                                   label_selector=f"{SERVICE_NAME_LABEL}=kube-dns")).items
        assert len(slices) == 1 and slices[0].metadata.name.startswith("kube-dns-")  # type: ignore[union-attr]
        assert slices[0].endpoints[0].addresses == ["127.0.0.1"]
        assert [(p.name, p.port) for p in slices[0].ports or []] == [("dns", port), ("dns-tcp", port)]
        ep = await admin.get(Endpoints, "kube-dns", namespace="kube-system")
        assert ep.subsets[0].addresses[0].ip == "127.0.0.1"  # type: ignore[index]
        # its own name resolves, as every Service's does
        assert (await dig(port, f"kube-dns.kube-system.svc.{ZONE}", "A")).data() == ["10.43.0.10"]

        # kept: a slice someone deleted comes back, ports someone changed are put back
        await admin.delete(EndpointSlice, slices[0].metadata.name or "", namespace="kube-system")
        svc.spec.ports = svc.spec.ports[:1]  # type: ignore[index]
        await admin.update(svc)

        async def repaired() -> bool:
            try:
                await admin.get(EndpointSlice, slices[0].metadata.name or "", namespace="kube-system")
            except NotFound:
                return False
            now = await admin.get(Service, "kube-dns", namespace="kube-system")
            return len(now.spec.ports or []) == 2

        await eventually(repaired, timeout=5)
        # and then left alone: no write loop between the keeper and the API server's defaults
        await asyncio.sleep(0.5)

        async def versions() -> list[str | None]:
            return [(await admin.get(Service, "kube-dns", namespace="kube-system")).metadata.resource_version,
                    (await admin.get(Endpoints, "kube-dns", namespace="kube-system")).metadata.resource_version,
                    (await admin.get(EndpointSlice, slices[0].metadata.name or "",
                                     namespace="kube-system")).metadata.resource_version]

        settled = await versions()
        await asyncio.sleep(1.0)
        assert await versions() == settled


async def test_a_flood_of_outside_names_stays_bounded() -> None:
    """An upstream that never answers: at most max_tasks forwards wait, the rest get SERVFAIL at once."""
    from dns.forward import Forwarder
    from dns.server import DnsServer
    from dns.zone import Zone

    loop = asyncio.get_running_loop()
    silent, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    replies: list[DNSRecord] = []

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Address) -> None:
            replies.append(DNSRecord.parse(data))

    server = DnsServer(Zone(), Forwarder([silent.get_extra_info("sockname")[:2]], timeout=0.5),
                       port=0, max_tasks=5)
    async with server:
        sender, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", server.port))
        try:
            for i in range(50):
                sender.sendto(DNSRecord.question(f"host{i}.example.org", "A").pack())
            await asyncio.sleep(0.2)
            assert len(server._tasks) == 5
            assert len(replies) == 45 and all(r.header.rcode == 2 for r in replies)
            await asyncio.sleep(0.6)  # the waiting five time out: SERVFAIL naming the upstream
            assert len(replies) == 50 and not server._tasks
        finally:
            sender.close()
            silent.close()


async def test_forwarded_answers_are_cached_for_their_ttl() -> None:
    from dns.forward import Forwarder

    now = [1000.0]
    async with upstream_server() as (upstream, address):
        forwarder = Forwarder([address], clock=lambda: now[0])
        request = DNSRecord.question("www.example.org", "A")
        assert (await forwarder.resolve(request)).rr[0].ttl == 60
        now[0] += 10
        aged = await forwarder.resolve(request)
        assert aged.rr[0].ttl == 50 and aged.header.id == request.header.id
        assert len(upstream.queries) == 1
        now[0] += 51  # past the TTL: asked again
        assert (await forwarder.resolve(request)).rr[0].ttl == 60
        assert len(upstream.queries) == 2
