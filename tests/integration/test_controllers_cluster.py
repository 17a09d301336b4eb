"""Node lifecycle, node IPAM, namespace deletion, garbage collection and leader election,
against a real etcd and API server with hollow nodes."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from api.apps import Deployment, ReplicaSet
from api.client import Client
from api.coordination import Lease
from api.core import Event, Namespace, Node, Pod
from api.errors import NotFound
from api.meta import ObjectMeta
from controllers.manager import LEASE_NAME
from controllers.nodelifecycle_core import UNREACHABLE
from controllers.podutil import is_active
from tests.integration.controllers_support import Manager, cluster, deployment, eventually

pytestmark = pytest.mark.slow


async def test_dead_node_is_tainted_and_its_pods_move(client: Client) -> None:
    async with cluster(client, nodes=3, node_monitor_grace_period=1.5, pod_eviction_timeout=1.0) as c:
        await client.create(deployment("web", 6))
        await eventually(lambda: c.rolled_out("web"), what="rollout")
        victim = c.hollow.nodes["hollow-0"]
        on_victim = [p for p in await c.ready_pods(app="web") if p.spec.node_name == "hollow-0"]
        assert on_victim, "the scheduler spreads pods over every node"
        victim.stop()

        async def tainted() -> bool:
            node = await client.get(Node, "hollow-0")
            ready = node.status.condition("Ready") if node.status else None
            keys = {(t.key, t.effect) for t in (node.spec.taints if node.spec else None) or []}
            return ready is not None and ready.status == "Unknown" and \
                keys >= {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}

        await eventually(tainted, timeout=10, what="node marked unreachable")

        async def moved() -> bool:
            pods = await c.ready_pods(app="web")
            return len(pods) == 6 and all(p.spec.node_name != "hollow-0" for p in pods)

        await eventually(moved, timeout=20, what="pods rescheduled onto live nodes")
        reasons = {e.reason for e in (await client.list(Event, namespace="default")).items}
        assert {"NodeNotReady", "TaintManagerEviction", "SuccessfulCreate"} <= reasons

        victim.resume()

        async def back() -> bool:
            node = await client.get(Node, "hollow-0")
            ready = node.status.condition("Ready") if node.status else None
            return ready is not None and ready.status == "True" and not (node.spec and node.spec.taints)

        await eventually(back, timeout=10, what="node untainted after coming back")


async def test_nodes_get_distinct_pod_cidrs(client: Client) -> None:
    async with cluster(client, nodes=4, cluster_cidr="10.244.0.0/16") as c:
        async def assigned() -> bool:
            nodes = (await client.list(Node)).items
            return len(nodes) == 4 and all(n.spec and n.spec.pod_cidr for n in nodes)

        await eventually(assigned, what="podCIDRs assigned")
        nodes = (await client.list(Node)).items
        cidrs = [n.spec.pod_cidr for n in nodes if n.spec]
        assert len(set(cidrs)) == 4
        for n in nodes:
            assert n.spec is not None and n.spec.pod_cidrs == [n.spec.pod_cidr]
            net = ipaddress.IPv4Network(n.spec.pod_cidr or "")
            assert net.prefixlen == 24 and net.subnet_of(ipaddress.IPv4Network("10.244.0.0/16"))
        # A restarted manager rebuilds its allocator from the nodes and never reuses a subnet.
        await c.manager.shutdown()
        c.manager.start()
        await c.hollow.add_node("hollow-late")

        async def late() -> bool:
            node = await client.get(Node, "hollow-late")
            return bool(node.spec and node.spec.pod_cidr)

        await eventually(late, what="late node gets a CIDR")
        node = await client.get(Node, "hollow-late")
        assert node.spec is not None and node.spec.pod_cidr not in cidrs
        await c.hollow.remove_node("hollow-late")


async def test_namespace_deletion_removes_everything(client: Client) -> None:
    async with cluster(client, nodes=2) as c:
        await client.create(Namespace(metadata=ObjectMeta(name="shop")))
        await client.create(deployment("cart", 3, namespace="shop"))
        await eventually(lambda: c.rolled_out("cart", "shop"), what="rollout")
        await client.delete(Namespace, "shop")

        async def gone() -> bool:
            try:
                await client.get(Namespace, "shop")
            except NotFound:
                return True
            return False

        await eventually(gone, timeout=20, what="namespace deleted")
        for model in (Deployment, ReplicaSet, Pod):
            assert (await client.list(model, namespace="shop")).items == []


async def test_garbage_collection_propagation(client: Client) -> None:
    async with cluster(client, nodes=2) as c:
        # Background: the server deletes the Deployment at once; its ReplicaSet and pods follow.
        await client.create(deployment("bg", 2))
        await eventually(lambda: c.rolled_out("bg"), what="bg rollout")
        await client.delete(Deployment, "bg", namespace="default", propagation_policy="Background")

        async def bg_gone() -> bool:
            rss = [rs for rs in (await client.list(ReplicaSet, namespace="default")).items
                   if rs.metadata.name and rs.metadata.name.startswith("bg-")]
            return not rss and not await c.pods(app="bg")

        await eventually(bg_gone, what="background GC")

        # Foreground: the Deployment stays (deletionTimestamp) until its dependents are gone.
        await client.create(deployment("fg", 2))
        await eventually(lambda: c.rolled_out("fg"), what="fg rollout")
        await client.delete(Deployment, "fg", namespace="default", propagation_policy="Foreground")
        marked = await client.get(Deployment, "fg", namespace="default")
        assert marked.metadata.deletion_timestamp is not None
        assert "foregroundDeletion" in (marked.metadata.finalizers or [])

        async def fg_gone() -> bool:
            try:
                await client.get(Deployment, "fg", namespace="default")
            except NotFound:
                return not await c.pods(app="fg")
            return False

        await eventually(fg_gone, what="foreground GC")

        # Orphan: the Deployment goes, its ReplicaSet and pods stay, without the owner reference.
        await client.create(deployment("or", 2))
        await eventually(lambda: c.rolled_out("or"), what="orphan rollout")
        await client.delete(Deployment, "or", namespace="default", propagation_policy="Orphan")

        async def orphaned() -> bool:
            try:
                await client.get(Deployment, "or", namespace="default")
                return False
            except NotFound:
                pass
            rss = [rs for rs in (await client.list(ReplicaSet, namespace="default")).items
                   if rs.metadata.name and rs.metadata.name.startswith("or-")]
            return len(rss) == 1 and not rss[0].metadata.owner_references

        await eventually(orphaned, what="orphaned ReplicaSet")
        await asyncio.sleep(0.5)
        pods = [p for p in await c.pods(app="or") if is_active(p)]
        assert len(pods) == 2  # still owned by the surviving ReplicaSet


async def test_two_managers_one_leader(client: Client) -> None:
    async with cluster(client, nodes=2, leader_elect=True, identity="cm-a") as c:
        second = Manager(client, {"leader_elect": True, "identity": "cm-b"})
        second.start()
        try:
            await client.create(deployment("le", 4))
            await eventually(lambda: c.rolled_out("le"), what="rollout with two managers")
            lease = await client.get(Lease, LEASE_NAME, namespace="kube-system")
            assert lease.spec is not None and lease.spec.holder_identity in ("cm-a", "cm-b")
            assert len([p for p in await c.pods(app="le") if is_active(p)]) == 4
            rss = [rs for rs in (await client.list(ReplicaSet, namespace="default")).items
                   if rs.metadata.name and rs.metadata.name.startswith("le-")]
            assert len(rss) == 1

            # Fail over: whichever leads stops (releasing the Lease); the other takes over.
            leader, standby, standby_id = ((c.manager, second, "cm-b") if lease.spec.holder_identity == "cm-a"
                                           else (second, c.manager, "cm-a"))
            await leader.shutdown()
            await client.create(deployment("le2", 2))
            await eventually(lambda: c.rolled_out("le2"), what="rollout after failover")
            lease = await client.get(Lease, LEASE_NAME, namespace="kube-system")
            assert lease.spec is not None and lease.spec.holder_identity == standby_id
            assert standby.task is not None and not standby.task.done()
        finally:
            if second.task is not None and not second.task.done():
                await second.shutdown()


async def test_pod_cidr_is_freed_with_its_node(client: Client) -> None:
    async with cluster(client, nodes=2, cluster_cidr="10.9.0.0/23") as c:
        async def both() -> bool:
            return all(n.spec and n.spec.pod_cidr for n in (await client.list(Node)).items)

        await eventually(both, what="two subnets handed out")
        first = await client.get(Node, "hollow-0")
        assert first.spec is not None
        await c.hollow.add_node("hollow-2")

        async def refused() -> bool:
            events = (await client.list(Event, namespace="default")).items
            return any(e.reason == "CIDRNotAvailable" and e.involved_object.name == "hollow-2" for e in events)

        await eventually(refused, what="range exhausted")
        await c.hollow.remove_node("hollow-0")

        async def reused() -> bool:
            node = await client.get(Node, "hollow-2")
            return bool(node.spec and node.spec.pod_cidr)

        await eventually(reused, what="freed subnet handed to the waiting node")
        node = await client.get(Node, "hollow-2")
        assert node.spec is not None and node.spec.pod_cidr == first.spec.pod_cidr
        await c.hollow.remove_node("hollow-2")


async def test_pods_of_a_deleted_node_are_replaced(client: Client) -> None:
    async with cluster(client, nodes=3) as c:
        await client.create(deployment("gone", 6))
        await eventually(lambda: c.rolled_out("gone"), what="rollout")
        assert any(p.spec.node_name == "hollow-0" for p in await c.ready_pods(app="gone"))
        await c.hollow.remove_node("hollow-0")

        async def moved() -> bool:
            pods = [p for p in await c.pods(app="gone")]
            return len(pods) == 6 and all(p.spec.node_name != "hollow-0" and p.status and
                                          p.status.phase == "Running" for p in pods)

        await eventually(moved, what="pods of the deleted node replaced")
