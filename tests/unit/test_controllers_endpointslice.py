"""EndpointSlice and Endpoints decision cores: which pods, which conditions and ports, how
endpoints are packed into slices, stability under churn (hypothesis), the write tracker."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from api.core import Pod
from api.services import MANAGED_BY_LABEL, SERVICE_NAME_LABEL, SLICE_CONTROLLER, Endpoints, EndpointSlice, Service
from controllers import endpoints_core as ec
from controllers import endpointslice_core as core
from controllers import endpointslice_pods as pods_of
from controllers.endpointslice_tracker import SliceTracker

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_names = itertools.count()


def service(name: str = "web", *, selector: dict[str, str] | None = None, ports: list[dict[str, Any]] | None = None,
            publish: bool = False, uid: str = "svc-uid", cluster_ip: str = "10.43.0.20",
            labels: dict[str, str] | None = None) -> Service:
    return Service.from_dict({
        "metadata": {"name": name, "namespace": "default", "uid": uid, "labels": labels},
        "spec": {"selector": {"app": "web"} if selector is None else selector, "clusterIP": cluster_ip,
                 "publishNotReadyAddresses": publish,
                 "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
                 if ports is None else ports},
    })


def pod(name: str, ip: str | None = "10.244.1.2", *, ready: bool = True, deleting: bool = False,
        phase: str = "Running", http: int | None = 8080, labels: dict[str, str] | None = None,
        namespace: str = "default", hostname: str | None = None, subdomain: str | None = None,
        node: str = "n1") -> Pod:
    ports = [{"name": "http", "containerPort": http}] if http is not None else []
    return Pod.from_dict({
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": labels or {"app": "web"},
                     "deletionTimestamp": "2026-01-01T00:00:30Z" if deleting else None},
        "spec": {"nodeName": node, "hostname": hostname, "subdomain": subdomain,
                 "containers": [{"name": "c", "image": "i", "ports": ports}]},
        "status": {"phase": phase, "podIP": ip,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    })


def apply(plan: core.Plan, existing: list[EndpointSlice]) -> list[EndpointSlice]:
    """What the API server would hold after the plan: names for creates, new resourceVersions."""
    by_name = {s.metadata.name: s for s in existing}
    for s in plan.delete:
        del by_name[s.metadata.name]
    for s in plan.update:
        assert s.metadata.name in by_name, "an update of a slice that does not exist"
        by_name[s.metadata.name] = s.copy_deep()
    for s in plan.create:
        assert s.metadata.name is None and s.metadata.generate_name is not None
        fresh = s.copy_deep()
        fresh.metadata.name = f"{s.metadata.generate_name}{next(_names)}"
        fresh.metadata.uid = f"slice-uid-{fresh.metadata.name}"
        by_name[fresh.metadata.name] = fresh
    return list(by_name.values())


def endpoints_of(slices: list[EndpointSlice]) -> Counter[str]:
    return Counter(ep.target_ref.name or "" for s in slices for ep in s.endpoints if ep.target_ref)


def the_endpoint(slices: list[EndpointSlice]) -> Any:
    (s,) = [s for s in slices if s.endpoints]
    (ep,) = s.endpoints
    return ep


# ---------------------------------------------------------------- which pods, what endpoint


def test_a_ready_pod_is_one_ready_endpoint_with_its_port_resolved_by_name() -> None:
    plan = core.reconcile(service(), [pod("a", hostname="a", subdomain="web")], [])
    (s,) = plan.create
    assert s.address_type == "IPv4" and s.metadata.generate_name == "web-" and s.metadata.namespace == "default"
    assert s.metadata.labels == {SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: SLICE_CONTROLLER}
    (ref,) = s.metadata.owner_references or []
    assert (ref.kind, ref.name, ref.uid, ref.controller) == ("Service", "web", "svc-uid", True)
    assert [p.to_dict() for p in s.ports or []] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert [ep.to_dict() for ep in s.endpoints] == [{
        "addresses": ["10.244.1.2"], "conditions": {"ready": True, "serving": True, "terminating": False},
        "hostname": "a", "nodeName": "n1",
        "targetRef": {"kind": "Pod", "name": "a", "namespace": "default", "uid": "uid-a"}}]


def test_conditions_unready_terminating_and_publish_not_ready() -> None:
    def cond(p: Pod, publish: bool = False) -> tuple[bool | None, ...]:
        c = the_endpoint(core.reconcile(service(publish=publish), [p], []).create).conditions
        return c.ready, c.serving, c.terminating

    assert cond(pod("a", ready=False)) == (False, False, False)
    assert cond(pod("a", deleting=True)) == (False, True, True)  # drained at once, still serving
    assert cond(pod("a", deleting=True, ready=False)) == (False, False, True)
    assert cond(pod("a", ready=False), publish=True) == (True, True, False)
    assert cond(pod("a", deleting=True), publish=True) == (True, True, True)


def test_pods_without_ip_finished_elsewhere_or_unselected_are_skipped() -> None:
    pods = [pod("noip", None), pod("done", phase="Succeeded"), pod("failed", phase="Failed"),
            pod("other", labels={"app": "db"}), pod("elsewhere", namespace="other"), pod("v6", "fd00::5"),
            pod("ok")]
    plan = core.reconcile(service(), pods, [])
    assert endpoints_of(plan.create) == Counter(["ok"])


def test_hostname_only_under_the_service_as_subdomain() -> None:
    ep = the_endpoint(core.reconcile(service(), [pod("a", hostname="a", subdomain="other")], []).create)
    assert ep.hostname is None


def test_pods_resolving_ports_differently_get_different_slices() -> None:
    svc = service(ports=[{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                         {"name": "metrics", "port": 9100, "targetPort": 9100, "protocol": "TCP"},
                         {"name": "dns", "port": 53, "targetPort": "http", "protocol": "UDP"}])
    plan = core.reconcile(svc, [pod("a", http=8080), pod("b", http=8080), pod("c", http=9090),
                                pod("d", "10.244.1.9", http=None)], [])
    got = {tuple((p.name, p.port, p.protocol) for p in s.ports or []): sorted(endpoints_of([s])) for s in plan.create}
    # The UDP port never resolves: the container port named http is TCP.
    assert got == {(("http", 8080, "TCP"), ("metrics", 9100, "TCP")): ["a", "b"],
                   (("http", 9090, "TCP"), ("metrics", 9100, "TCP")): ["c"],
                   (("metrics", 9100, "TCP"),): ["d"]}


def test_numeric_or_absent_target_port() -> None:
    svc = service(ports=[{"name": "a", "port": 80, "targetPort": 8000}, {"name": "b", "port": 81}])
    (s,) = core.reconcile(svc, [pod("p")], []).create
    assert [(p.name, p.port, p.protocol) for p in s.ports or []] == [("a", 8000, "TCP"), ("b", 81, "TCP")]


def test_service_labels_and_headless_label() -> None:
    svc = service(cluster_ip="None", labels={"tier": "db", SERVICE_NAME_LABEL: "spoof"})
    (s,) = core.reconcile(svc, [pod("a")], []).create
    assert s.metadata.labels == {"tier": "db", SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: SLICE_CONTROLLER,
                                 core.HEADLESS_LABEL: ""}


# ---------------------------------------------------------------- whose slices


def foreign(name: str = "web-manual", manager: str | None = "someone-else") -> EndpointSlice:
    labels = {SERVICE_NAME_LABEL: "web"} | ({MANAGED_BY_LABEL: manager} if manager else {})
    return EndpointSlice.from_dict({"metadata": {"name": name, "namespace": "default", "labels": labels},
                                    "addressType": "IPv4", "endpoints": [{"addresses": ["10.9.9.9"]}]})


def test_selectorless_services_are_left_alone_except_our_own_leftovers() -> None:
    ours = apply(core.reconcile(service(), [pod("a")], []), [])
    svc = service(selector={})
    assert core.reconcile(svc, [pod("a")], [foreign(), foreign("x", None)]).empty()
    plan = core.reconcile(svc, [pod("a")], [*ours, foreign()])
    assert [s.metadata.name for s in plan.delete] == [ours[0].metadata.name] and not plan.create


def test_external_name_services_are_not_managed() -> None:
    ours = apply(core.reconcile(service(), [pod("a")], []), [])
    svc = Service.from_dict(service().to_dict() | {"spec": {"type": "ExternalName", "externalName": "x.example",
                                                             "selector": {"app": "web"}}})
    plan = core.reconcile(svc, [pod("a")], ours)
    assert not plan.create and not plan.update and len(plan.delete) == 1
    assert not pods_of.managed(svc)  # what both controllers check first


def test_a_service_being_deleted_gets_no_new_slices() -> None:
    svc = Service.from_dict(service().to_dict() | {"metadata": service().metadata.to_dict()
                                                   | {"deletionTimestamp": "2026-01-01T00:00:00Z"}})
    assert core.reconcile(svc, [pod("a")], []).create == []
    slices = apply(core.reconcile(service(), [pod("a")], []), [])
    plan = core.reconcile(svc, [pod("a", ready=False)], slices)  # updates still flow
    assert len(plan.update) == 1


def test_other_managers_slices_are_never_touched() -> None:
    plan = core.reconcile(service(), [], [foreign(), foreign("y", None)])
    assert not plan.update and not plan.delete and len(plan.create) == 1  # the placeholder


def test_slices_of_an_older_service_with_the_same_name_are_replaced() -> None:
    old = apply(core.reconcile(service(uid="old"), [pod("a")], []), [])
    plan = core.reconcile(service(uid="new"), [pod("a")], old)
    assert not plan.create and not plan.delete  # reused rather than delete + create
    (s,) = plan.update
    assert [r.uid for r in s.metadata.owner_references or []] == ["new"]


# ---------------------------------------------------------------- placeholder, packing, stability


def test_no_endpoints_keeps_one_empty_placeholder_which_is_reused() -> None:
    slices = apply(core.reconcile(service(), [], []), [])
    (ph,) = slices
    assert ph.endpoints == [] and ph.ports is None
    assert core.reconcile(service(), [], slices).empty()
    plan = core.reconcile(service(), [pod("a")], slices)
    assert not plan.create and not plan.delete and [s.metadata.name for s in plan.update] == [ph.metadata.name]
    slices = apply(plan, slices)
    plan = core.reconcile(service(), [], slices)  # the last pod goes: back to a placeholder, in place
    assert not plan.create and not plan.delete and len(plan.update) == 1
    assert core.reconcile(service(), [], apply(plan, slices)).empty()


def many(n: int, *, ready: bool = True) -> list[Pod]:
    return [pod(f"p{i:03d}", f"10.244.{i // 200}.{i % 200 + 2}", ready=ready) for i in range(n)]


def test_250_pods_make_3_slices_and_one_change_rewrites_one() -> None:
    pods = many(250)
    slices = apply(core.reconcile(service(), pods, []), [])
    assert sorted(len(s.endpoints) for s in slices) == [50, 100, 100]
    assert core.reconcile(service(), pods, slices).empty()
    pods[137] = pod("p137", "10.244.0.139", ready=False)
    plan = core.reconcile(service(), pods, slices)
    assert not plan.create and not plan.delete and len(plan.update) == 1
    assert "p137" in endpoints_of(plan.update)
    # One pod replaced by another: the new one takes the freed place, one write.
    slices = apply(plan, slices)
    plan = core.reconcile(service(), [*pods[1:], pod("new", "10.244.9.9")], slices)
    assert not plan.create and not plan.delete and len(plan.update) == 1
    assert endpoints_of(plan.update)["new"] == 1 and endpoints_of(plan.update)["p000"] == 0
    # A pod added alone goes into the slice with room.
    slices = apply(plan, slices)
    plan = core.reconcile(service(), [*pods[1:], pod("new", "10.244.9.9"), pod("more", "10.244.9.10")], slices)
    assert not plan.create and not plan.delete and [len(s.endpoints) for s in plan.update] == [51]


def test_duplicates_and_overfull_slices_are_repaired() -> None:
    slices = apply(core.reconcile(service(), many(4), [], max_endpoints=4), [])
    twin = slices[0].copy_deep()
    twin.metadata.name, twin.metadata.uid = "web-twin", "twin"
    plan = core.reconcile(service(), many(4), [*slices, twin], max_endpoints=3)
    after = apply(plan, [*slices, twin])
    assert endpoints_of(after) == Counter(p.metadata.name for p in many(4))
    assert all(len(s.endpoints) <= 3 for s in after)
    assert core.reconcile(service(), many(4), after, max_endpoints=3).empty()


# ---------------------------------------------------------------- properties

pod_names = st.sampled_from([f"p{i}" for i in range(24)])
pod_states = st.fixed_dictionaries({
    "ready": st.booleans(), "deleting": st.booleans(), "http": st.sampled_from([8080, 8080, 8080, 9090, None]),
    "ip": st.sampled_from(["10.244.0.{}", "10.244.0.{}", "10.244.0.{}", None]),
    "phase": st.sampled_from(["Running", "Running", "Running", "Pending", "Succeeded"]),
})
pod_sets = st.dictionaries(pod_names, pod_states, max_size=24)


def build(states: dict[str, dict[str, Any]]) -> list[Pod]:
    out = []
    for name, s in states.items():
        ip = s["ip"].format(int(name[1:]) + 2) if s["ip"] else None
        out.append(pod(name, ip, ready=s["ready"], deleting=s["deleting"], http=s["http"], phase=s["phase"]))
    return out


def wanted(pods: list[Pod]) -> Counter[str]:
    return Counter(p.metadata.name or "" for p in pods
                   if p.status and p.status.pod_ip and p.status.phase not in ("Succeeded", "Failed"))


def check(svc: Service, pods: list[Pod], before: list[EndpointSlice], limit: int) -> list[EndpointSlice]:
    plan = core.reconcile(svc, pods, before, max_endpoints=limit)
    after = apply(plan, before)
    assert endpoints_of(after) == wanted(pods)  # every wanted endpoint, exactly once
    for s in after:
        if core.is_managed(s):
            assert len(s.endpoints) <= limit
            ports = [(p.name, p.port) for p in s.ports or []]
            for ep in s.endpoints:  # every endpoint of a slice serves the slice's ports
                p = next(p for p in pods if p.metadata.name == (ep.target_ref.name if ep.target_ref else ""))
                http = p.spec.containers[0].ports
                assert ports == ([("http", http[0].container_port)] if http else [])
    if not wanted(pods):
        assert len([s for s in after if core.is_managed(s)]) == 1  # the placeholder
    assert core.reconcile(svc, pods, after, max_endpoints=limit).empty()  # a re-run writes nothing
    return after


@settings(max_examples=150, deadline=None)
@given(history=st.lists(pod_sets, min_size=1, max_size=4), limit=st.integers(1, 6))
def test_property_exact_cover_bounded_slices_and_idempotent(history: list[dict[str, dict[str, Any]]],
                                                            limit: int) -> None:
    svc = service()
    other = foreign()
    slices: list[EndpointSlice] = [other]
    for states in history:
        slices = check(svc, build(states), slices, limit)
    assert [s for s in slices if s.metadata.name == other.metadata.name] == [other]  # someone else's


@settings(max_examples=100, deadline=None)
@given(states=pod_sets, limit=st.integers(1, 6), data=st.data())
def test_property_one_pod_change_rewrites_one_slice(states: dict[str, dict[str, Any]], limit: int,
                                                    data: st.DataObject) -> None:
    svc = service()
    pods = build(states)
    slices = check(svc, pods, [], limit)
    listed = [i for i, p in enumerate(pods) if wanted([p])]
    if not listed:
        return
    i = data.draw(st.sampled_from(listed))
    state = dict(states[pods[i].metadata.name or ""])
    state["ready"], state["deleting"] = data.draw(st.sampled_from(
        [(r, d) for r in (True, False) for d in (True, False) if (r, d) != (state["ready"], state["deleting"])]))
    pods[i] = build({pods[i].metadata.name or "": state})[0]
    plan = core.reconcile(svc, pods, slices, max_endpoints=limit)
    assert not plan.create and not plan.delete and len(plan.update) == 1
    check(svc, pods, slices, limit)


@settings(max_examples=100, deadline=None)
@given(states=pod_sets, limit=st.integers(1, 6))
def test_property_from_scratch_packs_tightly(states: dict[str, dict[str, Any]], limit: int) -> None:
    pods = build(states)
    plan = core.reconcile(service(), pods, [], max_endpoints=limit)
    groups = Counter(p.spec.containers[0].ports[0].container_port if p.spec.containers[0].ports else 0
                     for p in pods if wanted([p]))
    assert len(plan.create) == max(1, sum(-(-n // limit) for n in groups.values()))


# ---------------------------------------------------------------- the Endpoints mirror


def test_endpoints_mirror_addresses_and_not_ready() -> None:
    pods = [pod("b", "10.244.1.3"), pod("a", "10.244.1.2", hostname="a", subdomain="web"),
            pod("u", "10.244.1.4", ready=False), pod("t", "10.244.1.5", deleting=True), pod("x", None)]
    ep = ec.desired(service(), pods, None)
    assert ep is not None and ep.metadata.name == "web" and ep.metadata.namespace == "default"
    assert [s.to_dict() for s in ep.subsets or []] == [{
        "addresses": [
            {"ip": "10.244.1.2", "hostname": "a", "nodeName": "n1",
             "targetRef": {"kind": "Pod", "name": "a", "namespace": "default", "uid": "uid-a"}},
            {"ip": "10.244.1.3", "nodeName": "n1",
             "targetRef": {"kind": "Pod", "name": "b", "namespace": "default", "uid": "uid-b"}}],
        "notReadyAddresses": [
            {"ip": "10.244.1.4", "nodeName": "n1",
             "targetRef": {"kind": "Pod", "name": "u", "namespace": "default", "uid": "uid-u"}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]
    stored = Endpoints.from_dict(ep.to_dict() | {"metadata": ep.metadata.to_dict() | {"resourceVersion": "5"}})
    assert ec.desired(service(), list(reversed(pods)), stored) is None  # nothing changed: no write
    again = ec.desired(service(), pods[:1], stored)
    assert again is not None and again.metadata.resource_version == "5"
    publish = ec.desired(service(publish=True), pods, None)
    assert publish is not None
    (subset,) = publish.subsets or []
    assert [a.ip for a in subset.addresses or []] == ["10.244.1.2", "10.244.1.3", "10.244.1.4", "10.244.1.5"]
    assert subset.not_ready_addresses is None


def test_endpoints_mirror_headless_without_ports_and_port_groups() -> None:
    ep = ec.desired(service(ports=[], cluster_ip="None"), [pod("a")], None)
    assert ep is not None and ep.metadata.labels == {core.HEADLESS_LABEL: ""}
    assert [s.to_dict() for s in ep.subsets or []] == [
        {"addresses": [{"ip": "10.244.1.2", "nodeName": "n1",
                        "targetRef": {"kind": "Pod", "name": "a", "namespace": "default", "uid": "uid-a"}}]}]
    assert (ec.desired(service(ports=[]), [pod("a")], None) or Endpoints()).subsets is None
    ep = ec.desired(service(), [pod("a", "10.244.1.2"), pod("b", "10.244.1.3", http=9090)], None)
    assert ep is not None and [[p.port for p in s.ports or []] for s in ep.subsets or []] == [[8080], [9090]]


def test_endpoints_mirror_truncates_at_1000_ready_first() -> None:
    pods = many(600) + [pod(f"u{i:03d}", f"10.245.{i // 200}.{i % 200 + 2}", ready=False) for i in range(600)]
    ep = ec.desired(service(), pods, None)
    assert ep is not None and (ep.metadata.annotations or {}).get(ec.OVER_CAPACITY) == "truncated"
    (s,) = ep.subsets or []
    assert len(s.addresses or []) == 600 and len(s.not_ready_addresses or []) == 400
    fits = ec.desired(service(), many(10), ep)
    assert fits is not None and ec.OVER_CAPACITY not in (fits.metadata.annotations or {})


# ---------------------------------------------------------------- the write tracker


def slice_(name: str, rv: str, uid: str = "u") -> EndpointSlice:
    return EndpointSlice.from_dict({"metadata": {"name": name, "resourceVersion": rv, "uid": uid},
                                    "addressType": "IPv4"})


def test_tracker_waits_for_the_cache_to_show_our_writes() -> None:
    now = [0.0]
    t = SliceTracker(clock=lambda: now[0], ttl=30)
    assert not t.stale("ns/web", [])
    t.wrote("ns/web", slice_("a", "10"))
    assert t.stale("ns/web", [])  # created, not yet seen
    assert t.stale("ns/web", [slice_("a", "9")])  # an older version
    assert not t.stale("ns/web", [slice_("a", "12")])
    t.deleted("ns/web", slice_("b", "4", uid="ub"))
    assert t.stale("ns/web", [slice_("b", "4", uid="ub")])
    assert not t.stale("ns/web", [slice_("b", "7", uid="other")])  # a new object of that name
    t.wrote("ns/web", slice_("c", "20"))
    t.observed_deletion("ns/web", slice_("c", "20"))
    assert not t.stale("ns/web", [])
    t.wrote("ns/web", slice_("d", "30"))
    now[0] = 31.0
    assert not t.stale("ns/web", [])  # the event never came: give up waiting
