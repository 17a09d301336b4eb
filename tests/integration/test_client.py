"""api.client against a real API server on a real etcd: verbs, typed errors, watches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from api import errors
from api.apps import Deployment
from api.client import ApiConnectionError, Client
from api.core import Namespace, Node, Pod
from api.meta import ObjectMeta
from apiserver.etcd_process import free_port
from tests.support.cluster import ApiServer, Etcd


def make_pod(name: str, *, labels: dict[str, str] | None = None, namespace: str | None = None) -> Pod:
    return Pod.from_dict({
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    })


def make_deployment(name: str, replicas: int = 1) -> Deployment:
    labels = {"app": name}
    return Deployment.from_dict({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    })


async def test_create_get_update_delete_roundtrip(client: Client) -> None:
    created = await client.create(make_pod("web", labels={"app": "web"}))
    assert created.metadata.namespace == "default"
    assert created.metadata.uid and created.metadata.resource_version
    got = await client.get(Pod, "web")
    assert got.metadata.uid == created.metadata.uid

    changed = got.copy_deep()
    changed.metadata.labels = {"app": "web", "tier": "front"}
    updated = await client.update(changed)
    assert updated.metadata.labels == {"app": "web", "tier": "front"}
    assert int(updated.metadata.resource_version or 0) > int(got.metadata.resource_version or 0)

    with_status = Pod.from_dict({**updated.to_dict(), "status": {"phase": "Running", "podIP": "10.244.0.5"}})
    status_updated = await client.update_status(with_status)
    assert status_updated.status is not None and status_updated.status.pod_ip == "10.244.0.5"

    reply = await client.delete(Pod, "web", grace_period_seconds=0)
    assert reply.get("metadata", {}).get("name") == "web" or reply.get("kind") == "Status"
    with pytest.raises(errors.NotFound) as info:
        await client.get(Pod, "web")
    assert 'pods "web" not found' in str(info.value)


async def test_typed_errors_carry_status_and_cause(client: Client) -> None:
    await client.create(make_pod("dup"))
    with pytest.raises(errors.AlreadyExists) as exists:
        await client.create(make_pod("dup"))
    assert exists.value.name == "dup"
    assert exists.value.__cause__ is not None and getattr(exists.value.__cause__, "status", None) == 409

    bad = make_pod("Bad_Name")
    bad.spec.containers[0].name = "Also Bad"
    with pytest.raises(errors.Invalid) as invalid:
        await client.create(bad)
    fields = {c.field for c in invalid.value.causes}
    assert "metadata.name" in fields and any(f and "containers[0].name" in f for f in fields)

    with pytest.raises(errors.NotFound):
        await client.create(make_pod("x", namespace="no-such-namespace"))


async def test_stale_resource_version_conflicts_and_no_update_is_lost(client: Client) -> None:
    base = await client.create(make_pod("race"))

    async def writer(i: int) -> str:
        mine = base.copy_deep()
        mine.metadata.labels = {"writer": str(i)}
        try:
            await client.update(mine)
            return "won"
        except errors.Conflict:
            return "conflict"

    outcomes = await asyncio.gather(*(writer(i) for i in range(5)))
    assert sorted(outcomes) == ["conflict"] * 4 + ["won"]

    with pytest.raises(errors.Conflict):
        await client.delete(Pod, "race", resource_version=base.metadata.resource_version)
    with pytest.raises(errors.Conflict):
        await client.delete(Pod, "race", uid="not-the-uid")


async def test_patch_types(client: Client) -> None:
    await client.create(Pod.from_dict({
        "metadata": {"name": "p", "labels": {"a": "1"}},
        "spec": {"containers": [{"name": "web", "image": "busybox", "ports": [{"containerPort": 80}]},
                                {"name": "side", "image": "busybox"}]},
    }))
    merged = await client.patch(Pod, "p", {"metadata": {"labels": {"b": "2", "a": None}}})
    assert merged.metadata.labels == {"b": "2"}

    strategic = await client.patch(Pod, "p", {"spec": {"containers": [{"name": "web", "image": "nginx"}]}},
                                   patch_type="strategic")
    assert [(c.name, c.image) for c in strategic.spec.containers] == [("web", "nginx"), ("side", "busybox")]
    assert strategic.spec.containers[0].ports and strategic.spec.containers[0].ports[0].container_port == 80

    jsonp = await client.patch(Pod, "p", [{"op": "add", "path": "/metadata/annotations", "value": {"x": "y"}}],
                               patch_type="json")
    assert jsonp.metadata.annotations == {"x": "y"}

    status = await client.patch(Pod, "p", {"status": {"phase": "Running"}}, subresource="status")
    assert status.status is not None and status.status.phase == "Running"


async def test_lists_selectors_and_paging(client: Client) -> None:
    for i in range(7):
        await client.create(make_pod(f"pod-{i}", labels={"parity": "even" if i % 2 == 0 else "odd"}))
    await client.create(make_pod("elsewhere"), namespace="kube-system")

    everything = await client.list(Pod)
    assert len(everything.items) == 8 and everything.resource_version
    in_default = await client.list(Pod, namespace="default", label_selector="parity=even")
    assert sorted(p.metadata.name or "" for p in in_default.items) == ["pod-0", "pod-2", "pod-4", "pod-6"]
    by_field = await client.list(Pod, field_selector="metadata.name=pod-3")
    assert [p.metadata.name for p in by_field.items] == ["pod-3"]

    page = await client.list(Pod, namespace="default", limit=3)
    assert len(page.items) == 3 and page.continue_
    rest = await client.list(Pod, namespace="default", limit=100, continue_=page.continue_)
    assert len(rest.items) == 4 and rest.continue_ is None

    paged = await client.list_all(Pod, namespace="default", limit=2)
    assert sorted(p.metadata.name or "" for p in paged.items) == [f"pod-{i}" for i in range(7)]
    assert paged.continue_ is None and paged.resource_version


async def test_cluster_scoped_objects(client: Client) -> None:
    node = await client.create(Node(metadata=ObjectMeta(name="n1")))
    assert node.metadata.namespace is None
    assert [n.metadata.name for n in (await client.list(Node)).items] == ["n1"]
    ns = await client.create(Namespace(metadata=ObjectMeta(name="team-a")))
    assert ns.metadata.name == "team-a"
    await client.create(make_pod("x", namespace="team-a"))
    assert [p.metadata.name for p in (await client.list(Pod, namespace="team-a")).items] == ["x"]
    await client.delete(Node, "n1")
    with pytest.raises(errors.NotFound):
        await client.get(Node, "n1")


async def test_bind_and_scale(client: Client) -> None:
    pod = await client.create(make_pod("unbound"))
    await client.bind(pod, "n1")
    bound = await client.get(Pod, "unbound")
    assert bound.spec.node_name == "n1"
    with pytest.raises(errors.Conflict):
        await client.bind(bound, "n2")

    await client.create(make_deployment("web", replicas=1))
    scale = await client.get_scale(Deployment, "web")
    assert scale.spec.replicas == 1
    scaled = await client.update_scale(Deployment, "web", 4)
    assert scaled.spec.replicas == 4
    assert (await client.get(Deployment, "web")).spec.replicas == 4


async def test_raw_request(client: Client) -> None:
    version = await client.request("GET", "/version")
    assert isinstance(version, dict) and "gitVersion" in version
    with pytest.raises(errors.NotFound):
        await client.request("GET", "/api/v1/namespaces/default/pods/nope")


async def test_unreachable_server_names_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with Client(url, timeout=2) as c:
        with pytest.raises(ApiConnectionError) as info:
            await c.get(Pod, "x")
    assert url in str(info.value)
    assert isinstance(info.value, ConnectionError)


# ------------------------------------------------------------------------ watch


async def collect(events: AsyncIterator[object], n: int, timeout: float = 5) -> list[object]:
    out: list[object] = []
    async with asyncio.timeout(timeout):
        async for ev in events:
            out.append(ev)
            if len(out) == n:
                break
    return out


async def test_watch_streams_changes_in_order_from_a_list(client: Client) -> None:
    await client.create(make_pod("before"))
    listed = await client.list(Pod, namespace="default")
    seen: list[tuple[str, str | None]] = []
    async with client.watch(Pod, namespace="default", resource_version=listed.resource_version) as w:
        await client.create(make_pod("a", labels={"x": "1"}))
        await client.patch(Pod, "a", {"metadata": {"labels": {"x": "2"}}})
        await client.delete(Pod, "a", grace_period_seconds=0)
        async with asyncio.timeout(5):
            async for ev in w:
                if ev.type != "BOOKMARK":
                    seen.append((ev.type, ev.object.metadata.name))
                if len(seen) == 3:
                    break
        assert w.resource_version is not None
    assert seen == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


async def test_watch_bookmarks_and_label_selector(client: Client) -> None:
    rv = (await client.list(Pod)).resource_version
    types: list[str] = []
    async with client.watch(Pod, label_selector="app=web", resource_version=rv) as w:
        await client.create(make_pod("other", labels={"app": "db"}))
        await client.create(make_pod("web", labels={"app": "web"}))
        async with asyncio.timeout(5):
            async for ev in w:
                types.append(ev.type)
                if ev.type == "ADDED":
                    assert ev.object.metadata.name == "web"
                if "ADDED" in types and "BOOKMARK" in types:
                    break  # the fixture's server sends a bookmark every 0.5 s


async def test_watch_timeout_ends_the_iterator(client: Client) -> None:
    rv = (await client.list(Pod)).resource_version
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with asyncio.timeout(5):
        async for _ in client.watch(Pod, resource_version=rv, timeout_seconds=1):
            pass
    assert 0.9 <= loop.time() - start < 3


async def test_watch_resumes_across_apiserver_restart(client: Client, apiserver: ApiServer) -> None:
    rv = (await client.list(Pod)).resource_version
    names: list[str] = []
    async with client.watch(Pod, namespace="default", resource_version=rv) as w:
        await client.create(make_pod("one"))

        async def consume() -> None:
            async for ev in w:
                if ev.type == "ADDED":
                    names.append(ev.object.metadata.name or "")
                    if len(names) == 3:
                        return

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0.2)
        await apiserver.stop()
        await asyncio.sleep(0.3)  # the watch is now retrying against a closed port
        await apiserver.start()
        # Written before the watch has reconnected: resuming from its resourceVersion must still show them.
        await client.create(make_pod("two"))
        await client.create(make_pod("three"))
        await asyncio.wait_for(consumer, 10)
    assert names == ["one", "two", "three"]


async def test_watch_from_a_compacted_revision_raises_gone(etcd: Etcd) -> None:
    from apiserver.app import STORAGE

    server = ApiServer(etcd.url, watch_window=2)
    await server.start()
    try:
        async with Client(server.url) as c:
            old = (await c.create(make_pod("p0"))).metadata.resource_version
            for i in range(1, 5):
                last = await c.create(make_pod(f"p{i}"))
            await server.app[STORAGE].compact(int(last.metadata.resource_version or 0))
            with pytest.raises(errors.Gone):
                async with asyncio.timeout(5):
                    async for _ in c.watch(Pod, resource_version=old):
                        pass
    finally:
        await server.stop()


async def test_silent_connection_is_replaced_without_losing_events(client: Client,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    from api.resources import PODS
    from api.watch import Watch

    rv = (await client.list(Pod)).resource_version
    names: list[str] = []
    # The fixture's server is silent for 0.5 s between bookmarks: a 0.2 s read timeout
    # declares the connection dead several times over; resuming must lose nothing.
    with caplog.at_level(logging.DEBUG, logger="api.watch"):
        async with Watch(client, Pod, path=PODS.path("default"), resource_version=rv, read_timeout=0.2) as w:
            for i in range(3):
                await client.create(make_pod(f"slow-{i}"))
                async with asyncio.timeout(5):
                    async for ev in w:
                        if ev.type == "ADDED":
                            names.append(ev.object.metadata.name or "")
                            break
                await asyncio.sleep(0.5)
    assert names == ["slow-0", "slow-1", "slow-2"]
    assert any("resuming from resourceVersion" in r.getMessage() for r in caplog.records)


async def test_closing_the_client_ends_its_watches(apiserver: ApiServer) -> None:
    c = Client(apiserver.url)
    rv = (await c.list(Pod)).resource_version

    async def consume() -> None:
        async for _ in c.watch(Pod, resource_version=rv):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    await c.close()
    with pytest.raises(ConnectionError, match="closed"):
        await asyncio.wait_for(task, 5)
    with pytest.raises(ApiConnectionError):
        await c.get(Pod, "x")
