"""The allocator's pure parts: what a Service holds, what an update keeps, where dynamic picks land."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from apiserver.allocator import ServiceAllocator, carry_over, held, parse_port_range


def test_held_keys_follow_type():
    svc = {"spec": {"type": "NodePort", "clusterIP": "10.43.1.2",
                    "ports": [{"port": 53, "protocol": "UDP", "nodePort": 30053},
                              {"port": 53, "protocol": "TCP", "nodePort": 30053}]}}
    assert held(svc) == ["/kubelite/allocations/serviceips/10.43.1.2", "/kubelite/allocations/nodeports/30053"]
    assert held({"spec": {"clusterIP": "None"}}) == []
    assert held({"spec": {"type": "ExternalName", "externalName": "x.example"}}) == []


def test_an_update_without_allocated_values_keeps_them():
    old = {"spec": {"type": "NodePort", "clusterIP": "10.43.1.2", "clusterIPs": ["10.43.1.2"],
                    "externalTrafficPolicy": "Cluster", "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}}
    new = {"spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}, {"port": 81}]}}
    carry_over(old, new)
    assert new["spec"]["clusterIP"] == "10.43.1.2"
    assert new["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "nodePort": 30080}, {"port": 81}]
    to_cluster_ip = {"spec": {"type": "ClusterIP", "clusterIP": "10.43.1.2", "externalTrafficPolicy": "Cluster",
                              "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}}
    carry_over(old, to_cluster_ip)
    assert to_cluster_ip["spec"]["ports"] == [{"port": 80, "protocol": "TCP"}]
    assert "externalTrafficPolicy" not in to_cluster_ip["spec"]


@given(st.sets(st.integers(min_value=257, max_value=65534), max_size=200))
def test_dynamic_picks_avoid_the_static_band_and_taken_addresses(taken_offsets):
    alloc = ServiceAllocator(storage=None)  # type: ignore[arg-type]  # picking needs no storage
    taken = {alloc.ip(o) for o in taken_offsets}
    ip = alloc._pick_ip(taken)
    assert ip is not None and ip not in taken
    offset = int(ipaddress.ip_address(ip)) - int(ipaddress.ip_address("10.43.0.0"))
    assert 256 < offset < 65535


def test_the_static_band_is_used_when_the_rest_is_full():
    alloc = ServiceAllocator(storage=None, cluster_ip_range="10.43.0.0/28")  # type: ignore[arg-type]
    taken = {alloc.ip(o) for o in range(1, 14)}
    assert alloc._pick_ip(taken) == alloc.ip(14)
    assert alloc._pick_ip(taken | {alloc.ip(14)}) is None


def test_port_ranges():
    assert parse_port_range("30000-32767") == (30000, 32767)
    assert parse_port_range("8080") == (8080, 8080)
