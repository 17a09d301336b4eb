"""proxy.rules and proxy.applier.plan: Services + EndpointSlices -> nft, and minimal diffs."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

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
from proxy.applier import conntrack_argv, plan, stale_udp_flows
from proxy.rules import (
    NO_EP_NODEPORTS,
    NO_EP_SERVICES,
    SERVICE_IPS,
    SERVICE_NODEPORTS,
    Context,
    Flow,
    Fragment,
    full_text,
    translate,
)

CTX = Context(node_name="n1")


def svc(name: str, ip: str | None = "10.43.0.5", *, port: int = 80, protocol: str = "TCP", port_name: str | None = None,
        node_port: int | None = None, **spec: object) -> Service:
    ports = [ServicePort(name=port_name, port=port, protocol=protocol, target_port=8080, node_port=node_port)]
    return Service(metadata=ObjectMeta(name=name, namespace="default"),
                   spec=ServiceSpec(cluster_ip=ip, ports=ports, **spec))  # type: ignore[arg-type]


def ep(ip: str, node: str = "n2", *, ready: bool | None = True, serving: bool | None = None,
       terminating: bool | None = None) -> Endpoint:
    return Endpoint(addresses=[ip], node_name=node,
                    conditions=EndpointConditions(ready=ready, serving=serving, terminating=terminating))


def slice_of(service: str, *endpoints: Endpoint, port: int = 8080, protocol: str = "TCP",
             port_name: str | None = None) -> EndpointSlice:
    return EndpointSlice(metadata=ObjectMeta(name=f"{service}-abc", namespace="default",
                                             labels={SERVICE_NAME_LABEL: service}),
                         address_type="IPv4", endpoints=list(endpoints),
                         ports=[EndpointSlicePort(name=port_name, port=port, protocol=protocol)])


def dnat_targets(frag: Fragment) -> set[str]:
    """Every ip:port the fragment DNATs to (a rule per endpoint, or one numgen map)."""
    out = set()
    for rules in frag.chains.values():
        for r in rules:
            out |= set(re.findall(r"dnat to (\S+)", r))
            out |= {f"{ip}:{port}" for ip, port in re.findall(r"\d+ : ([\d.]+) \. (\d+)", r)}
    return out


def chain_of(frag: Fragment, prefix: str) -> tuple[str, ...]:
    (rules,) = [r for name, r in frag.chains.items() if name.startswith(prefix)]
    return rules


def test_cluster_ip_spreads_over_ready_endpoints_only() -> None:
    frag = translate(svc("web"), [slice_of("web", ep("10.244.2.2"), ep("10.244.3.2", "n3"),
                                           ep("10.244.3.3", ready=False))], CTX)
    assert frag is not None
    assert dnat_targets(frag) == {"10.244.2.2:8080", "10.244.3.2:8080"}  # the unready one gets nothing
    [(key, verdict)] = [(k, v) for (m, k), v in frag.elements.items() if m == SERVICE_IPS]
    assert key == "10.43.0.5 . tcp . 80" and verdict.startswith("goto svc-")
    assert list(frag.chains) == [verdict.removeprefix("goto ")]  # no chain per endpoint needed
    assert frag.chains[verdict.removeprefix("goto ")] == (
        "ip daddr 10.43.0.5 ip saddr != 10.244.0.0/16 meta mark set meta mark | 0x4000",
        "ip saddr { 10.244.2.2, 10.244.3.2 } meta mark set meta mark | 0x4000",  # hairpin
        "meta l4proto tcp dnat ip to numgen random mod 2 map { 0 : 10.244.2.2 . 8080, 1 : 10.244.3.2 . 8080 }")


def test_falls_back_to_serving_terminating_endpoints_when_none_is_ready() -> None:
    draining = ep("10.244.2.2", ready=False, serving=True, terminating=True)
    gone = ep("10.244.2.3", ready=False, serving=False, terminating=True)
    frag = translate(svc("web"), [slice_of("web", draining, gone)], CTX)
    assert frag is not None and dnat_targets(frag) == {"10.244.2.2:8080"}
    frag = translate(svc("web"), [slice_of("web", draining, ep("10.244.2.4"))], CTX)
    assert frag is not None and dnat_targets(frag) == {"10.244.2.4:8080"}  # a ready one wins


def test_no_usable_endpoint_rejects_in_the_filter_map() -> None:
    frag = translate(svc("web", node_port=30080, type="NodePort"), [slice_of("web", ep("10.244.2.2", ready=False))],
                     CTX)
    assert frag is not None and not frag.chains
    assert frag.elements == {(NO_EP_SERVICES, "10.43.0.5 . tcp . 80"): "goto reject-chain",
                             (NO_EP_NODEPORTS, "tcp . 30080"): "goto reject-chain"}
    text = full_text(CTX, [frag])
    nat_chains = re.findall(r"chain (nat-\w+) \{\n(.*?)\n    \}", text, re.S)
    assert nat_chains and all("reject" not in body for _, body in nat_chains)


def test_headless_and_external_name_get_no_rules() -> None:
    assert translate(svc("db", "None"), [slice_of("db", ep("10.244.2.2"))], CTX) is None
    assert translate(svc("ext", None, type="ExternalName", external_name="example.com"), [], CTX) is None


def test_ports_match_by_name_and_protocol() -> None:
    s = svc("dns", port=53, protocol="UDP", port_name="dns")
    frag = translate(s, [slice_of("dns", ep("10.244.2.2"), port=5353, protocol="UDP", port_name="dns"),
                         slice_of("dns", ep("10.244.2.3"), port=5353, protocol="TCP", port_name="dns")], CTX)
    assert frag is not None and dnat_targets(frag) == {"10.244.2.2:5353"}
    assert any("meta l4proto udp dnat" in r for rules in frag.chains.values() for r in rules)
    assert frag.flows == {Flow("udp", "10.43.0.5", 53, "10.244.2.2")}


def test_client_ip_affinity_checks_per_endpoint_sets_before_the_random_pick() -> None:
    s = svc("web", session_affinity="ClientIP",
            session_affinity_config=SessionAffinityConfig(client_ip=ClientIPConfig(timeout_seconds=60)))
    frag = translate(s, [slice_of("web", ep("10.244.2.2"), ep("10.244.2.3"))], CTX)
    assert frag is not None and len(frag.sets) == 2 and set(frag.sets.values()) == {60}
    rules = chain_of(frag, "svc-")
    lookups = [r for r in rules if r.startswith("ip saddr @aff-")]
    assert len(lookups) == 2 and rules[-1].startswith("numgen") and rules.index(lookups[-1]) < len(rules) - 1
    for name in frag.sets:
        endpoint_chain = frag.chains["ep-" + name.removeprefix("aff-")]
        assert f"update @{name} {{ ip saddr }}" in endpoint_chain  # the pick is remembered by its endpoint
        assert f"ip saddr @{name} goto ep-{name.removeprefix('aff-')}" in rules
    assert "timeout 60s" in full_text(CTX, [frag])


def test_node_port_cluster_policy_masquerades_external_traffic() -> None:
    frag = translate(svc("web", node_port=30080, type="NodePort"), [slice_of("web", ep("10.244.2.2"))], CTX)
    assert frag is not None
    verdict = frag.elements[(SERVICE_NODEPORTS, "tcp . 30080")]
    ext = frag.chains[verdict.removeprefix("goto ")]
    assert ext[0] == "meta mark set meta mark | 0x4000" and ext[1].startswith("goto svc-")
    assert Flow("tcp", None, 30080, "10.244.2.2") in frag.flows


def test_external_traffic_policy_local_keeps_the_client_and_uses_local_endpoints() -> None:
    s = svc("web", node_port=30080, type="NodePort", external_traffic_policy="Local")
    frag = translate(s, [slice_of("web", ep("10.244.1.2", "n1"), ep("10.244.2.2", "n2"))], CTX)
    assert frag is not None
    ext = chain_of(frag, "ext-")
    assert ext[0].startswith("ip saddr 10.244.0.0/16 goto svc-")  # pods: cluster-wide, as ClusterIP traffic
    assert ext[1].startswith("fib saddr type local meta mark set")  # the node itself: masqueraded
    assert ext[2].startswith("goto svl-")  # others: no mark, so the client address is kept
    assert chain_of(frag, "svl-") == ("ip saddr 10.244.1.2 meta mark set meta mark | 0x4000",
                                      "meta l4proto tcp dnat to 10.244.1.2:8080")
    # No local endpoint: traffic from outside is dropped, pods still reach the others.
    frag = translate(s, [slice_of("web", ep("10.244.2.2", "n2"))], CTX)
    assert frag is not None and chain_of(frag, "ext-")[-1] == "drop"


def test_internal_traffic_policy_local() -> None:
    s = svc("web", internal_traffic_policy="Local")
    frag = translate(s, [slice_of("web", ep("10.244.1.2", "n1"), ep("10.244.2.2", "n2"))], CTX)
    assert frag is not None and dnat_targets(frag) == {"10.244.1.2:8080"}
    assert frag.elements[(SERVICE_IPS, "10.43.0.5 . tcp . 80")].startswith("goto svl-")
    frag = translate(s, [slice_of("web", ep("10.244.2.2", "n2"))], CTX)
    assert frag is not None and frag.elements == {(NO_EP_SERVICES, "10.43.0.5 . tcp . 80"): "drop"}


def test_endpoints_outside_the_cluster_cidr_are_always_masqueraded() -> None:
    frag = translate(svc("kubernetes", "10.43.0.1", port=443, port_name="https"),
                     [slice_of("kubernetes", ep("198.51.100.1", ""), port=6443, port_name="https")], CTX)
    assert frag is not None
    assert chain_of(frag, "ep-") == ("meta mark set meta mark | 0x4000", "meta l4proto tcp dnat to 198.51.100.1:6443")


def test_chain_names_are_stable_and_per_service_port() -> None:
    one = translate(svc("web"), [slice_of("web", ep("10.244.2.2"))], CTX)
    again = translate(svc("web"), [slice_of("web", ep("10.244.2.2"))], CTX)
    other = translate(svc("web2"), [slice_of("web2", ep("10.244.2.2"))], CTX)
    assert one is not None and other is not None and one == again
    assert not set(one.chains) & set(other.chains)
    assert all(re.fullmatch(r"svc-[0-9a-f]{10}-[a-z0-9-]+", n) for n in one.chains)
    sticky = translate(svc("web", session_affinity="ClientIP"), [slice_of("web", ep("10.244.2.2"))], CTX)
    assert sticky is not None and all(re.fullmatch(r"(svc|ep)-[0-9a-f]{10}-[a-z0-9-]+", n) for n in sticky.chains)


# ---------------------------------------------------------------- the incremental plan


class Table:
    """A model of the kernel's table that refuses what nft would refuse (dangling references,
    deleting something still referenced, adding what exists)."""

    def __init__(self, frags: list[Fragment]) -> None:
        self.chains: dict[str, list[str]] = {}
        self.sets: set[str] = set()
        self.elements: dict[tuple[str, str], str] = {}
        for f in frags:
            self.sets |= set(f.sets)
            self.chains.update({n: list(r) for n, r in f.chains.items()})
            self.elements.update(f.elements)

    def refs(self, text: str) -> tuple[set[str], set[str]]:
        return set(re.findall(r"goto (\S+?)[,\s}]", text + " ")) - {"reject-chain"}, set(re.findall(r"@(\S+)", text))

    def check_refs(self, text: str) -> None:
        chains, sets = self.refs(text)
        assert chains <= set(self.chains), f"dangling chain in {text}"
        assert sets <= self.sets, f"dangling set in {text}"

    def referenced(self) -> tuple[set[str], set[str]]:
        chains: set[str] = set()
        sets: set[str] = set()
        for text in [r for rules in self.chains.values() for r in rules] + list(self.elements.values()):
            c, s = self.refs(text)
            chains |= c
            sets |= s
        return chains, sets

    def run(self, script: str) -> None:
        for line in script.splitlines():
            words = line.split()
            verb, kind, name = words[0], words[1], words[4] if words[1] != "element" else ""
            if (verb, kind) == ("add", "set"):
                assert words[4] not in self.sets
                self.sets.add(words[4])
            elif (verb, kind) == ("add", "chain"):
                assert name not in self.chains
                self.chains[name] = []
            elif (verb, kind) == ("add", "rule"):
                rule = line.split(f" {name} ", 1)[1]
                self.check_refs(rule)
                self.chains[name].append(rule)
            elif (verb, kind) == ("flush", "chain"):
                self.chains[name] = []
            elif (verb, kind) == ("delete", "chain"):
                assert not self.chains.pop(name), "chain deleted with rules"
                assert name not in self.referenced()[0], f"{name} deleted while referenced"
            elif (verb, kind) == ("delete", "set"):
                self.sets.remove(name)
                assert name not in self.referenced()[1]
            elif kind == "element":
                m, body = words[4], line.split("{ ", 1)[1].rsplit(" }", 1)[0]
                if verb == "add":
                    key, verdict = body.split(" : ")
                    assert (m, key) not in self.elements
                    self.check_refs(verdict)
                    self.elements[(m, key)] = verdict
                else:
                    del self.elements[(m, body)]
            else:
                raise AssertionError(line)


endpoint_sets = st.sets(st.integers(2, 12), max_size=5)


@settings(max_examples=150, deadline=None)
@given(old=st.lists(endpoint_sets, min_size=3, max_size=3), new=st.lists(endpoint_sets, min_size=3, max_size=3),
       affinity=st.booleans())
def test_plan_takes_any_old_state_to_the_new_one_with_valid_references(old: list[set[int]], new: list[set[int]],
                                                                       affinity: bool) -> None:
    def frags(eps: list[set[int]]) -> dict[str, Fragment | None]:
        out = {}
        for i, hosts in enumerate(eps):
            s = svc(f"s{i}", f"10.43.0.{i + 1}", node_port=30000 + i, type="NodePort",
                    session_affinity="ClientIP" if affinity else None)
            out[f"default/s{i}"] = translate(s, [slice_of(f"s{i}", *(ep(f"10.244.2.{h}") for h in hosts))], CTX)
        return out

    before, after = frags(old), frags(new)
    table = Table([f for f in before.values() if f])
    table.run(plan(before, after))
    expected = Table([f for f in after.values() if f])
    assert (table.chains, table.sets, table.elements) == (expected.chains, expected.sets, expected.elements)


def test_an_endpoint_change_touches_only_its_service() -> None:
    services = {f"default/s{i}": translate(svc(f"s{i}", f"10.43.1.{i}"),
                                           [slice_of(f"s{i}", *(ep(f"10.244.{i}.{h}") for h in range(2, 12)))], CTX)
                for i in range(50)}
    changed = translate(svc("s7", "10.43.1.7"), [slice_of("s7", *(ep(f"10.244.7.{h}") for h in range(3, 12)))], CTX)
    script = plan({"default/s7": services["default/s7"]}, {"default/s7": changed})
    touched = set(re.findall(r"(?:chain|rule) ip kubelite-svc (\S+)", script))
    assert touched and all(name.endswith("-default-s7-tcp") for name in touched)
    assert "service-ips" not in script  # the ClusterIP still leads to the same chain
    assert script.count("flush chain") == 1 and "delete" not in script  # one chain refilled
    assert plan(services, services) == ""  # nothing changed, nothing written


def test_stale_udp_flows_and_their_conntrack_command() -> None:
    s = svc("dns", port=53, protocol="UDP")
    before = translate(s, [slice_of("dns", ep("10.244.2.2"), ep("10.244.2.3"), protocol="UDP")], CTX)
    after = translate(s, [slice_of("dns", ep("10.244.2.2"), protocol="UDP")], CTX)
    [flow] = stale_udp_flows({"k": before}, {"k": after})
    assert conntrack_argv(flow) == ["conntrack", "-D", "-p", "udp", "--orig-dst", "10.43.0.5", "--orig-port-dst", "53",
                                    "--dst-nat", "10.244.2.3"]
    assert not stale_udp_flows({"k": translate(svc("web"), [slice_of("web", ep("10.244.2.2"))], CTX)}, {"k": None})
