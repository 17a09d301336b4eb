"""EventRecorder against a real API server: events land, repeats aggregate, a dead server costs little."""

from __future__ import annotations

import asyncio

from api.client import Client
from api.core import Event, Node, Pod
from api.events import EventRecorder
from api.meta import ObjectMeta
from apiserver.etcd_process import free_port


def make_pod(name: str) -> Pod:
    return Pod.from_dict({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})


async def test_event_is_recorded_with_its_object_and_source(client: Client) -> None:
    pod = await client.create(make_pod("web"))
    async with EventRecorder(client, component="scheduler", host="node-a") as rec:
        rec.event(pod, "Normal", "Scheduled", "Successfully assigned default/web to n1")
        await rec.flush(timeout=5)
    events = (await client.list(Event, namespace="default")).items
    assert len(events) == 1
    ev = events[0]
    assert (ev.metadata.name or "").startswith("web.")
    assert ev.involved_object.kind == "Pod" and ev.involved_object.name == "web"
    assert ev.involved_object.uid == pod.metadata.uid and ev.involved_object.namespace == "default"
    assert (ev.type, ev.reason, ev.count) == ("Normal", "Scheduled", 1)
    assert ev.source is not None and (ev.source.component, ev.source.host) == ("scheduler", "node-a")
    assert ev.first_timestamp is not None and ev.last_timestamp is not None


async def test_repeats_aggregate_into_one_event(client: Client) -> None:
    pod = await client.create(make_pod("flaky"))
    async with EventRecorder(client, component="kubelet") as rec:
        for _ in range(3):
            rec.event(pod, "Warning", "BackOff", "Back-off restarting failed container")
        await rec.flush(timeout=5)
        rec.event(pod, "Warning", "BackOff", "Back-off restarting failed container")
        rec.event(pod, "Warning", "BackOff", "Back-off restarting failed container")
        rec.event(pod, "Normal", "Pulled", "Container image already present")
        await rec.flush(timeout=5)
    events = sorted((await client.list(Event, namespace="default")).items, key=lambda e: e.reason or "")
    assert [(e.reason, e.count) for e in events] == [("BackOff", 5), ("Pulled", 1)]
    assert rec.dropped == 0


async def test_deleted_event_is_recreated_and_cluster_scoped_objects_use_default(client: Client) -> None:
    node = await client.create(Node(metadata=ObjectMeta(name="n1")))
    async with EventRecorder(client, component="node-controller") as rec:
        rec.event(node, "Normal", "RegisteredNode", "Node n1 event: Registered Node n1")
        await rec.flush(timeout=5)
        (first,) = (await client.list(Event, namespace="default")).items
        assert first.involved_object.kind == "Node" and first.involved_object.namespace is None
        await client.delete(Event, first.metadata.name or "", namespace="default")
        rec.event(node, "Normal", "RegisteredNode", "Node n1 event: Registered Node n1")
        await rec.flush(timeout=5)
    (again,) = (await client.list(Event, namespace="default")).items
    assert again.metadata.name != first.metadata.name and again.count == 1


async def test_dead_server_neither_raises_nor_grows_memory() -> None:
    async with Client(f"http://127.0.0.1:{free_port()}", timeout=1) as dead:
        rec = EventRecorder(dead, component="test", max_pending=50, send_attempts=1)
        pod = make_pod("p")
        pod.metadata.namespace = "default"
        for i in range(2000):
            rec.event(pod, "Normal", "Tick", f"tick {i}")
        assert len(rec._pending) <= 50
        loop = asyncio.get_running_loop()
        start = loop.time()
        await rec.close(flush_timeout=0.5)
        assert loop.time() - start < 2
        assert rec.dropped == 2000
        rec.event(pod, "Normal", "Tick", "after close")  # still no exception
        assert rec.dropped == 2001
