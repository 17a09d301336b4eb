"""Pure parts of the pod network: nft scripts, names, /etc/hosts."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.network import Allocation, HostPort, NetworkError, NodeNetwork, hosts_file, nft
from runtime.network.links import host_veth_name


def test_base_ruleset_is_our_table_only_and_masquerades_outward_only_on_request() -> None:
    plain = nft.base_ruleset(bridge="kl0", pod_cidr="10.244.1.0/24", masquerade=False)
    tables = [line for line in plain.splitlines() if "table" in line]
    assert tables == ["add table ip kubelite", "delete table ip kubelite", "table ip kubelite {"]
    assert 'oifname "kl0" ip saddr 127.0.0.0/8 masquerade' in plain
    assert 'oifname "kl0" ip saddr 10.244.1.0/24 ct status dnat masquerade' in plain
    assert 'oifname != "kl0"' not in plain
    outward = nft.base_ruleset(bridge="kl0", pod_cidr="10.244.1.0/24", masquerade=True)
    assert 'oifname != "kl0" ip saddr 10.244.1.0/24 ip daddr != @peers masquerade' in outward


def test_host_ports_answer_on_the_node_address_and_loopback() -> None:
    alloc = Allocation("uid", "10.244.1.2", (HostPort(4000, 8080), HostPort(5353, 53, "UDP")))
    assert nft.add_hostports(alloc, node_ip="198.51.100.11").splitlines() == [
        "add element ip kubelite hostports { 198.51.100.11 . tcp . 4000 : 10.244.1.2 . 8080 }",
        "add element ip kubelite hostports { 127.0.0.1 . tcp . 4000 : 10.244.1.2 . 8080 }",
        "add element ip kubelite hostports { 198.51.100.11 . udp . 5353 : 10.244.1.2 . 53 }",
        "add element ip kubelite hostports { 127.0.0.1 . udp . 5353 : 10.244.1.2 . 53 }",
    ]
    assert nft.add_hostports(alloc, node_ip="127.0.0.1").count("127.0.0.1") == 2
    removal = nft.remove_hostports(alloc, node_ip="198.51.100.11").splitlines()
    assert removal[:2] == [
        "add element ip kubelite hostports { 198.51.100.11 . tcp . 4000 : 10.244.1.2 . 8080 }",
        "delete element ip kubelite hostports { 198.51.100.11 . tcp . 4000 }",
    ]
    assert nft.add_hostports(Allocation("uid", "10.244.1.2"), node_ip="198.51.100.11") == ""


def test_peer_set_is_replaced_whole() -> None:
    assert nft.set_peers([]) == "flush set ip kubelite peers\n"
    assert nft.set_peers(["10.244.3.0/24", "10.244.2.0/24"]).splitlines()[1] == (
        "add element ip kubelite peers { 10.244.2.0/24, 10.244.3.0/24 }")


def test_host_veth_names_are_stable_short_and_distinct() -> None:
    names = {host_veth_name(f"0d6f3c2e-0000-4000-8000-{i:012d}") for i in range(1000)}
    assert len(names) == 1000
    assert all(len(n) <= 15 for n in names)
    assert host_veth_name("abc") == host_veth_name("abc")


def test_hosts_file_names_the_pod() -> None:
    text = hosts_file("web-1", "10.244.1.2", "web-1")
    assert text.splitlines()[1] == "127.0.0.1\tlocalhost"
    assert text.endswith("10.244.1.2\tweb-1\n")
    assert hosts_file("web-1", "10.244.1.2", "web").endswith("10.244.1.2\tweb\tweb-1\n")


def test_node_network_arguments(tmp_path: Path) -> None:
    net = NodeNetwork(tmp_path, pod_cidr="10.244.1.0/24", node_ip="198.51.100.11", node_netns="kltest-h1")
    assert (net.gateway, net.netns_path) == ("10.244.1.1", "/run/netns/kltest-h1")
    assert NodeNetwork(tmp_path, pod_cidr="10.244.1.0/24", node_ip="10.0.0.1",
                       node_netns="/proc/1/ns/net").netns_path == "/proc/1/ns/net"
    assert NodeNetwork(tmp_path, pod_cidr="10.244.1.0/24", node_ip="10.0.0.1").netns_path is None
    with pytest.raises(NetworkError, match="longer than 15"):
        NodeNetwork(tmp_path, pod_cidr="10.244.1.0/24", node_ip="10.0.0.1", bridge="a-very-long-bridge")
    with pytest.raises(ValueError):
        NodeNetwork(tmp_path, pod_cidr="10.244.1.0/24", node_ip="not-an-ip")
