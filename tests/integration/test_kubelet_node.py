"""The kubelet's Node registration, status and Lease against a real API server (no root needed)."""

from __future__ import annotations

from pathlib import Path

from api.client import Client
from api.coordination import Lease
from api.core import Node, NodeSpec
from api.meta import ObjectMeta
from kubelet.node import LEASE_NAMESPACE, NodeAgent


async def test_register_reports_machine_and_renews_lease(client: Client, tmp_path: Path) -> None:
    agent = NodeAgent(client, "kltest-n1", node_ip="127.0.0.1", port=10250, root_dir=tmp_path,
                      labels={"tier": "test"})
    await agent.register()
    node = await client.get(Node, "kltest-n1")
    assert node.status and node.status.capacity and node.status.capacity["pods"] == "110"
    assert int(node.status.capacity["cpu"]) >= 1 and node.status.capacity["memory"].endswith("Ki")
    assert node.status.allocatable == node.status.capacity
    assert {c.type: c.status for c in node.status.conditions or []} == {
        "MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False", "Ready": "True"}
    assert [(a.type, a.address) for a in node.status.addresses or []] == [("InternalIP", "127.0.0.1"),
                                                                          ("Hostname", "kltest-n1")]
    assert node.status.daemon_endpoints and node.status.daemon_endpoints.kubelet_endpoint
    assert node.status.daemon_endpoints.kubelet_endpoint.port == 10250
    labels = node.metadata.labels or {}
    assert labels["kubernetes.io/hostname"] == "kltest-n1" and labels["kubernetes.io/os"] == "linux"
    assert labels["tier"] == "test" and "kubernetes.io/arch" in labels
    assert node.status.node_info and node.status.node_info.kubelet_version

    lease = await client.get(Lease, "kltest-n1", namespace=LEASE_NAMESPACE)
    assert lease.spec and lease.spec.holder_identity == "kltest-n1" and lease.spec.renew_time
    first = lease.spec.renew_time
    await agent.renew_lease()
    lease = await client.get(Lease, "kltest-n1", namespace=LEASE_NAMESPACE)
    assert lease.spec and lease.spec.renew_time and lease.spec.renew_time > first


async def test_reregistration_keeps_spec_and_transition_times(client: Client, tmp_path: Path) -> None:
    await client.create(Node(metadata=ObjectMeta(name="kltest-n2", labels={"zone": "a"}),
                             spec=NodeSpec(pod_cidr="10.244.9.0/24")))
    agent = NodeAgent(client, "kltest-n2", node_ip="127.0.0.1", port=10250, root_dir=tmp_path)
    await agent.register()
    node = await client.get(Node, "kltest-n2")
    assert node.spec and node.spec.pod_cidr == "10.244.9.0/24"
    assert node.metadata.labels and node.metadata.labels["zone"] == "a"
    ready = node.status.condition("Ready") if node.status else None
    assert ready is not None
    again = NodeAgent(client, "kltest-n2", node_ip="127.0.0.1", port=10250, root_dir=tmp_path)
    await again.register()
    node = await client.get(Node, "kltest-n2")
    assert node.status and node.status.condition("Ready").last_transition_time == ready.last_transition_time  # type: ignore[union-attr]
