"""The zone's records and answers: Services, headless endpoints, pods, NXDOMAIN vs NODATA,
SRV, PTR, CNAME, and the encoded replies (truncation, the cache, the id patch)."""

from __future__ import annotations

from typing import Any

from dnslib import EDNS0, DNSRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from api.core import Pod
from api.services import SERVICE_NAME_LABEL, EndpointSlice, Service
from dns.forward import Forwarder, parse_upstream, upstreams_from_resolv_conf
from dns.records import AAAA, CNAME, PTR, SRV, A, pod_records, service_records
from dns.server import DnsServer
from dns.zone import ANY, NOERROR, NXDOMAIN, Zone

D = "cluster.local"


def svc(name: str, ns: str = "default", **spec: Any) -> Service:
    return Service.from_dict({"metadata": {"name": name, "namespace": ns}, "spec": spec})


def eps(svc_name: str, endpoints: list[dict[str, Any]], *, name: str | None = None,
        ports: list[dict[str, Any]] | None = None, family: str = "IPv4") -> EndpointSlice:
    return EndpointSlice.from_dict({
        "metadata": {"name": name or f"{svc_name}-x", "namespace": "default",
                     "labels": {SERVICE_NAME_LABEL: svc_name}},
        "addressType": family, "endpoints": endpoints,
        "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]})


def zone_with(*services: tuple[Service, list[EndpointSlice]], namespaces: tuple[str, ...] = ("default",)) -> Zone:
    zone = Zone(D, ns_address="10.43.0.10")
    for ns in namespaces:
        zone.set_namespace(ns, True)
    for s, slices in services:
        zone.set_source(("svc", s.metadata.name), service_records(s, slices, D))
    return zone


def data(zone: Zone, name: str, qtype: int) -> list[str]:
    return sorted(str(r.data) for r in zone.lookup(name, qtype).answer)


WEB = svc("web", clusterIP="10.43.0.5", ports=[{"name": "http", "port": 80, "protocol": "TCP"},
                                               {"name": "Metrics", "port": 9090, "protocol": "UDP"},
                                               {"port": 81}])


def test_cluster_ip_service_a_srv_ptr() -> None:
    zone = zone_with((WEB, []))
    assert data(zone, "web.default.svc.cluster.local.", A) == ["10.43.0.5"]
    assert [r.data for r in zone.lookup("_http._tcp.web.default.svc.cluster.local.", SRV).answer] == [
        (0, 100, 80, "web.default.svc.cluster.local.")]
    assert zone.lookup("_metrics._udp.web.default.svc.cluster.local.", SRV).answer[0].data[2] == 9090
    assert data(zone, "5.0.43.10.in-addr.arpa.", PTR) == ["web.default.svc.cluster.local."]
    assert zone.owns("5.0.43.10.in-addr.arpa.") and not zone.owns("6.0.43.10.in-addr.arpa.")
    assert zone.lookup("web.default.svc.cluster.local.", ANY).answer[0].rtype == A


def test_nxdomain_versus_nodata() -> None:
    zone = zone_with((WEB, []), namespaces=("default", "empty"))
    for name, qtype in [("web.default.svc.cluster.local.", AAAA), ("web.default.svc.cluster.local.", SRV),
                        ("default.svc.cluster.local.", A), ("empty.svc.cluster.local.", A),
                        ("svc.cluster.local.", A), ("pod.cluster.local.", A), ("cluster.local.", A),
                        ("_tcp.web.default.svc.cluster.local.", SRV), ("empty.pod.cluster.local.", A)]:
        answer = zone.lookup(name, qtype)
        assert (answer.rcode, answer.answer, answer.soa) == (NOERROR, (), True), (name, qtype)
    for name in ["db.default.svc.cluster.local.", "web.other.svc.cluster.local.", "other.svc.cluster.local.",
                 "x.web.default.svc.cluster.local.", "_http._udp.web.default.svc.cluster.local.",
                 "nothing.cluster.local.", "10-0-0-1.other.pod.cluster.local."]:
        assert zone.lookup(name, A).rcode == NXDOMAIN and zone.lookup(name, A).soa, name


def test_a_service_without_address_or_endpoints_exists() -> None:
    zone = zone_with((svc("pending"), []), (svc("hl", clusterIP="None"), []))
    for name in ("pending.default.svc.cluster.local.", "hl.default.svc.cluster.local."):
        assert (zone.lookup(name, A).rcode, zone.lookup(name, A).answer) == (NOERROR, ())


def test_headless_ready_endpoints_hostnames_srv_ptr() -> None:
    hl = svc("db", clusterIP="None")
    slices = [eps("db", [{"addresses": ["10.244.1.2"], "hostname": "db-0", "conditions": {"ready": True}},
                         {"addresses": ["10.244.1.3"]},  # ready unset: ready
                         {"addresses": ["10.244.1.4"], "conditions": {"ready": False}}]),
              eps("db", [{"addresses": ["10.244.1.3"]}], name="db-dup")]  # the same endpoint twice
    zone = zone_with((hl, slices))
    assert data(zone, "db.default.svc.cluster.local.", A) == ["10.244.1.2", "10.244.1.3"]
    assert data(zone, "db-0.db.default.svc.cluster.local.", A) == ["10.244.1.2"]
    assert data(zone, "10-244-1-3.db.default.svc.cluster.local.", A) == ["10.244.1.3"]
    assert zone.lookup("10-244-1-4.db.default.svc.cluster.local.", A).rcode == NXDOMAIN
    assert sorted(r.data for r in zone.lookup("_http._tcp.db.default.svc.cluster.local.", SRV).answer) == [
        (0, 50, 8080, "10-244-1-3.db.default.svc.cluster.local."), (0, 50, 8080, "db-0.db.default.svc.cluster.local.")]
    assert data(zone, "2.1.244.10.in-addr.arpa.", PTR) == ["db-0.db.default.svc.cluster.local."]


def test_publish_not_ready_and_ipv6() -> None:
    hl = svc("db", clusterIP="None", publishNotReadyAddresses=True)
    slices = [eps("db", [{"addresses": ["10.244.1.4"], "conditions": {"ready": False}}]),
              eps("db", [{"addresses": ["fd00::4"]}], name="db-v6", family="IPv6")]
    zone = zone_with((hl, slices))
    assert data(zone, "db.default.svc.cluster.local.", A) == ["10.244.1.4"]
    assert data(zone, "db.default.svc.cluster.local.", AAAA) == ["fd00::4"]
    assert data(zone, "fd00--4.db.default.svc.cluster.local.", AAAA) == ["fd00::4"]
    v4_only = zone_with((svc("db", clusterIP="None"), slices[:1]))
    assert v4_only.lookup("db.default.svc.cluster.local.", AAAA).answer == ()


def test_external_name_is_a_cname_followed_inside_the_zone() -> None:
    ext = svc("ext", type="ExternalName", externalName="Example.ORG.")
    alias = svc("alias", type="ExternalName", externalName="web.default.svc.cluster.local")
    zone = zone_with((ext, []), (alias, []), (WEB, []))
    assert [(r.rtype, r.data) for r in zone.lookup("ext.default.svc.cluster.local.", A).answer] == [
        (CNAME, "example.org.")]
    assert [(r.rtype, r.data) for r in zone.lookup("alias.default.svc.cluster.local.", A).answer] == [
        (CNAME, "web.default.svc.cluster.local."), (A, "10.43.0.5")]
    assert data(zone, "ext.default.svc.cluster.local.", CNAME) == ["example.org."]


def test_pods_answer_insecure_names_and_ptr_ranked_below_services() -> None:
    pod = Pod.from_dict({"metadata": {"name": "p", "namespace": "default"},
                         "spec": {"containers": [{"name": "c", "image": "x"}]},
                         "status": {"podIP": "10.244.1.2"}})
    zone = zone_with((svc("db", clusterIP="None"), [eps("db", [{"addresses": ["10.244.1.2"], "hostname": "db-0"}])]))
    zone.set_source(("pod", "p"), pod_records(pod, D))
    assert data(zone, "2.1.244.10.in-addr.arpa.", PTR) == ["db-0.db.default.svc.cluster.local."]
    zone.set_source(("svc", "db"), [])
    assert data(zone, "2.1.244.10.in-addr.arpa.", PTR) == ["10-244-1-2.default.pod.cluster.local."]
    assert data(zone, "10-244-9-9.default.pod.cluster.local.", A) == ["10.244.9.9"]
    assert zone.lookup("not-an-ip.default.pod.cluster.local.", A).rcode == NXDOMAIN
    host_net = pod.copy_deep()
    host_net.spec.host_network = True
    assert pod_records(host_net, D) == []


def test_updates_touch_only_their_source_and_bump_the_version() -> None:
    zone = zone_with((WEB, []))
    before = zone.version
    assert not zone.set_source(("svc", "web"), service_records(WEB, [], D))
    assert zone.version == before
    moved = svc("web", clusterIP="10.43.0.6")
    assert zone.set_source(("svc", "web"), service_records(moved, [], D))
    assert data(zone, "web.default.svc.cluster.local.", A) == ["10.43.0.6"]
    assert zone.lookup("5.0.43.10.in-addr.arpa.", PTR).answer == ()
    assert zone.version > before


RECORDS = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["x", "y"]),
                             st.sampled_from(["10.43.0.1", "10.43.0.2", "None"])), max_size=12)


@settings(max_examples=60, deadline=None)
@given(RECORDS)
def test_any_sequence_of_updates_then_removal_leaves_the_empty_zone(updates: list[tuple[str, str, str]]) -> None:
    zone, empty = Zone(D), Zone(D)
    for name, ns, ip in updates:
        zone.set_source(name, service_records(svc(name, ns, clusterIP=ip), [], D))
    for name in "abc":
        zone.set_source(name, [])
    assert zone._names == empty._names and zone._exists == empty._exists


# ------------------------------------------------------------------ wire: the server's answers


def server_for(zone: Zone) -> DnsServer:
    return DnsServer(zone, Forwarder([]))


def ask(server: DnsServer, name: str, qtype: str, *, edns: int | None = None, udp: bool = True,
        qid: int = 4242) -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    q.header.id = qid
    if edns is not None:
        q.add_ar(EDNS0(udp_len=edns))
    out = server.answer_local(bytes(q.pack()), udp=udp)
    assert isinstance(out, bytes)
    return DNSRecord.parse(out)


def big_zone(n: int = 40) -> Zone:
    hl = svc("big", clusterIP="None")
    return zone_with((hl, [eps("big", [{"addresses": [f"10.244.5.{i}"]} for i in range(1, n + 1)])]))


def test_replies_truncate_over_udp_only_beyond_the_clients_size() -> None:
    server = server_for(big_zone())
    name = "big.default.svc.cluster.local"
    cut = ask(server, name, "A")
    assert cut.header.tc == 1 and cut.rr == [] and str(cut.q.qname) == name + "."
    assert len(ask(server, name, "A", udp=False).rr) == 40
    roomy = ask(server, name, "A", edns=1232)
    assert roomy.header.tc == 0 and len(roomy.rr) == 40 and roomy.ar[0].rtype == 41
    assert ask(server, name, "A", edns=100).header.tc == 1  # below 512 counts as 512


def test_cached_replies_carry_each_querys_id_and_follow_changes() -> None:
    zone = zone_with((WEB, []))
    server = server_for(zone)
    first = ask(server, "Web.Default.svc.cluster.local", "A", qid=1)
    second = ask(server, "Web.Default.svc.cluster.local", "A", qid=2)
    assert (first.header.id, second.header.id) == (1, 2)
    assert str(second.q.qname) == "Web.Default.svc.cluster.local."  # the asker's spelling
    assert str(second.rr[0].rdata) == "10.43.0.5" and second.rr[0].ttl == 5 and second.header.aa
    zone.set_source(("svc", "web"), service_records(svc("web", clusterIP="10.43.0.9"), [], D))
    assert str(ask(server, "Web.Default.svc.cluster.local", "A", qid=3).rr[0].rdata) == "10.43.0.9"


def test_a_change_drops_only_the_answers_that_used_a_changed_name() -> None:
    alias = svc("alias", type="ExternalName", externalName="web.default.svc.cluster.local")
    zone = zone_with((WEB, []), (alias, []), (svc("db", clusterIP="10.43.0.8"), []))
    server = server_for(zone)
    for name in ("web", "alias", "db"):
        ask(server, f"{name}.default.svc.cluster.local", "A")
    ask(server, "nope.default.svc.cluster.local", "A")
    assert len(server._udp_cache) == 4
    zone.set_source(("svc", "web"), service_records(svc("web", clusterIP="10.43.0.9"), [], D))
    assert len(server._udp_cache) == 2  # db and the NXDOMAIN stay cached
    assert [str(rr.rdata) for rr in ask(server, "alias.default.svc.cluster.local", "A").rr] == [
        "web.default.svc.cluster.local.", "10.43.0.9"]
    zone.set_source(("svc", "nope"), service_records(svc("nope", clusterIP="10.43.0.11"), [], D))
    assert ask(server, "nope.default.svc.cluster.local", "A").header.rcode == NOERROR
    zone.set_namespace("other", True)  # may change any pod name's answer: everything goes
    assert server._udp_cache == {}


def test_negative_replies_carry_the_soa_and_outside_names_go_to_the_forwarder() -> None:
    server = server_for(zone_with((WEB, [])))
    nx = ask(server, "nope.default.svc.cluster.local", "A")
    assert nx.header.rcode == NXDOMAIN and nx.auth[0].rtype == 6 and nx.auth[0].ttl == 5
    nodata = ask(server, "web.default.svc.cluster.local", "AAAA")
    assert nodata.header.rcode == NOERROR and nodata.rr == [] and nodata.auth[0].rtype == 6
    outside = DNSRecord.question("example.org", "A")
    assert isinstance(server.answer_local(bytes(outside.pack()), udp=True), DNSRecord)
    unknown_reverse = DNSRecord.question("9.9.9.9.in-addr.arpa", "PTR")
    assert isinstance(server.answer_local(bytes(unknown_reverse.pack()), udp=True), DNSRecord)


def test_garbage_gets_formerr_or_nothing() -> None:
    server = server_for(Zone(D))
    assert server.answer_local(b"\x00\x01", udp=True) is None
    reply = server.answer_local(b"\x12\x34\x01\x00" + b"\x00\x05" + b"\x00" * 6 + b"\xff", udp=True)
    assert isinstance(reply, bytes) and reply[:2] == b"\x12\x34" and reply[3] & 0x0F == 1
    axfr = DNSRecord.question("cluster.local", "AXFR")
    refused = server.answer_local(bytes(axfr.pack()), udp=False)
    assert isinstance(refused, bytes) and DNSRecord.parse(refused).header.rcode == 5


def test_upstreams_from_flags_and_resolv_conf(tmp_path: Any) -> None:
    assert parse_upstream("1.1.1.1") == ("1.1.1.1", 53)
    assert parse_upstream("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_upstream("[fd00::1]:54") == ("fd00::1", 54)
    conf = tmp_path / "resolv.conf"
    conf.write_text("search example\nnameserver 10.0.0.2\nnameserver 127.0.0.1\nnameserver bogus\n")
    assert upstreams_from_resolv_conf(conf, exclude=lambda a: a == ("127.0.0.1", 53)) == [("10.0.0.2", 53)]
    assert upstreams_from_resolv_conf(tmp_path / "missing") == []


ENDPOINTS = st.lists(st.tuples(st.integers(1, 20), st.sampled_from([None, "h0", "h1", "web-0"]), st.booleans()),
                     max_size=12, unique_by=lambda e: e[0])  # one endpoint per address, as pods have


@settings(max_examples=80, deadline=None)
@given(ENDPOINTS, st.booleans())
def test_every_srv_target_and_ptr_target_of_a_headless_service_resolves(
        endpoints: list[tuple[int, str | None, bool]], publish: bool) -> None:
    hl = svc("db", clusterIP="None", publishNotReadyAddresses=publish)
    slice_ = eps("db", [{"addresses": [f"10.244.7.{i}"], "conditions": {"ready": ready},
                         **({"hostname": host} if host else {})} for i, host, ready in endpoints])
    zone = zone_with((hl, [slice_]))
    own = "db.default.svc.cluster.local."
    served = set(data(zone, own, A))
    assert served == {f"10.244.7.{i}" for i, _h, ready in endpoints if ready or publish}
    for record in zone.lookup(f"_http._tcp.{own}", SRV).answer:
        target = record.data[3]
        assert set(data(zone, str(target), A)) <= served and data(zone, str(target), A)
    for address in served:
        (ptr,) = zone.lookup(f"{'.'.join(reversed(address.split('.')))}.in-addr.arpa.", PTR).answer
        assert address in data(zone, str(ptr.data), A)
