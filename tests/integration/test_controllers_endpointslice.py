"""The EndpointSlice controller and the Endpoints mirror against real etcd and a real API server,
with the controller-manager running. Pods are created bound (spec.nodeName) and their status
(podIP, Ready) is written through /status, as a kubelet would; nothing else plays the kubelet,
so a pod deleted with a grace period stays terminating."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api.apps import Deployment
from api.base import KubeModel
from api.client import Client, object_meta
from api.core import Node, Pod
from api.errors import AlreadyExists, NotFound
from api.services import MANAGED_BY_LABEL, SERVICE_NAME_LABEL, SLICE_CONTROLLER, Endpoints, EndpointSlice, Service
from controllers.manager import run_controller_manager
from tests.integration.controllers_support import cluster, deployment, eventually
from tests.integration.test_kubectl import KUBECTL, Kubectl
from tests.support.cluster import ApiServer, Etcd

pytestmark = pytest.mark.slow

NODES = ("kltest-n1", "kltest-n2")


@contextlib.asynccontextmanager
async def manager(client: Client) -> AsyncIterator[None]:
    for name in NODES:  # pods on unknown nodes would be collected by the pod GC
        with contextlib.suppress(AlreadyExists):
            await client.create(Node.from_dict({"metadata": {"name": name}}))
    stop = asyncio.Event()
    task = asyncio.create_task(run_controller_manager(client, leader_elect=False, stop=stop,
                                                      node_monitor_grace_period=3600))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def service(name: str = "web", *, selector: dict[str, str] | None = None, publish: bool = False,
            ports: list[dict[str, Any]] | None = None, ip: str = "10.43.0.20") -> Service:
    return Service.from_dict({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": name} if selector is None else selector, "clusterIP": ip,
                 "clusterIPs": [ip], "type": "ClusterIP", "sessionAffinity": "None",
                 "publishNotReadyAddresses": publish,
                 "ports": ports if ports is not None else
                 [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]},
    })


async def run_pod(client: Client, name: str, ip: str | None, *, app: str = "web", ready: bool = True,
                  http: int = 8080, node: str = NODES[0]) -> Pod:
    """Create a bound pod and report it running, as the kubelet of `node` would."""
    pod = await client.create(Pod.from_dict({
        "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox",
                                                   "ports": [{"name": "http", "containerPort": http}]}]},
    }))
    if ip is not None:
        await set_ready(client, name, ip, ready)
    return pod


async def set_ready(client: Client, name: str, ip: str, ready: bool) -> None:
    status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
              "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    await client.patch(Pod, name, {"status": status}, namespace="default", subresource="status")


async def slices_of(client: Client, svc: str) -> list[EndpointSlice]:
    return (await client.list(EndpointSlice, namespace="default", label_selector=f"{SERVICE_NAME_LABEL}={svc}")).items


def view(slices: list[EndpointSlice]) -> dict[str, tuple[tuple[tuple[str | None, int | None], ...], str, bool | None,
                                                        bool | None, bool | None]]:
    """pod name -> (slice ports, address, ready, serving, terminating)."""
    out = {}
    for s in slices:
        ports = tuple((p.name, p.port) for p in s.ports or [])
        for ep in s.endpoints:
            c = ep.conditions
            assert ep.target_ref is not None and c is not None
            out[ep.target_ref.name or ""] = (ports, ep.addresses[0], c.ready, c.serving, c.terminating)
    return out


async def endpoints_view(client: Client, name: str) -> dict[str, Any] | None:
    try:
        ep = await client.get(Endpoints, name, namespace="default")
    except NotFound:
        return None
    return {"ready": sorted(a.ip for s in ep.subsets or [] for a in s.addresses or []),
            "not_ready": sorted(a.ip for s in ep.subsets or [] for a in s.not_ready_addresses or []),
            "ports": sorted(p.port for s in ep.subsets or [] for p in s.ports or [])}


async def test_slices_and_endpoints_follow_pods(client: Client) -> None:
    async with manager(client):
        svc = await client.create(service())
        await run_pod(client, "web-a", "10.244.1.10")
        await run_pod(client, "web-b", "10.244.1.11", node=NODES[1])
        await run_pod(client, "web-c", "10.244.1.12", http=9090)  # the named port resolves to another number
        await run_pod(client, "web-u", "10.244.1.13", ready=False)
        await run_pod(client, "web-noip", None)
        await run_pod(client, "db-a", "10.244.1.14", app="db")

        http8080, http9090 = (("http", 8080),), (("http", 9090),)
        want = {"web-a": (http8080, "10.244.1.10", True, True, False),
                "web-b": (http8080, "10.244.1.11", True, True, False),
                "web-c": (http9090, "10.244.1.12", True, True, False),
                "web-u": (http8080, "10.244.1.13", False, False, False)}

        async def slices_right() -> bool:
            return view(await slices_of(client, "web")) == want

        await eventually(slices_right, what="slices list the pods with their ports")
        slices = await slices_of(client, "web")
        assert len(slices) == 2
        for s in slices:
            assert s.address_type == "IPv4" and (s.metadata.name or "").startswith("web-")
            assert s.metadata.labels == {SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: SLICE_CONTROLLER}
            ref = s.metadata.controller_ref()
            assert ref is not None and (ref.kind, ref.name, ref.uid) == ("Service", "web", svc.metadata.uid)
        ep = next(e for s in slices for e in s.endpoints if e.target_ref and e.target_ref.name == "web-b")
        assert ep.node_name == NODES[1] and ep.target_ref is not None and ep.target_ref.kind == "Pod"

        async def mirror() -> dict[str, Any] | None:
            return await endpoints_view(client, "web")

        want_ep: dict[str, list[Any]] = {"ready": ["10.244.1.10", "10.244.1.11", "10.244.1.12"],
                                         "not_ready": ["10.244.1.13"], "ports": [8080, 9090]}

        async def mirrored() -> bool:
            return await mirror() == want_ep

        await eventually(mirrored, what="the Endpoints mirror")

        # A pod deleted with a grace period: terminating and not ready at once, still serving.
        await client.delete(Pod, "web-a", namespace="default", grace_period_seconds=30)
        want["web-a"] = (http8080, "10.244.1.10", False, True, True)
        await eventually(slices_right, timeout=2, what="the deleted pod's endpoint is terminating")
        want_ep["ready"].remove("10.244.1.10")
        await eventually(mirrored, timeout=2, what="the deleted pod leaves the Endpoints")

        # Readiness changes show up, and the pod without an IP joins once it has one.
        await set_ready(client, "web-u", "10.244.1.13", True)
        await set_ready(client, "web-noip", "10.244.1.15", False)
        want["web-u"] = (http8080, "10.244.1.13", True, True, False)
        want["web-noip"] = (http8080, "10.244.1.15", False, False, False)
        await eventually(slices_right, what="readiness and a new address")

        # The Service goes: its slices (garbage collector, ownerReferences) and Endpoints go too.
        await client.delete(Service, "web", namespace="default")

        async def gone() -> bool:
            return not await slices_of(client, "web") and await mirror() is None

        await eventually(gone, what="slices and Endpoints of the deleted Service removed")


async def test_publish_not_ready_addresses_and_selectorless_services(etcd: Etcd, tmp_path: Path) -> None:
    # This API server keeps the `kubernetes` Service's Endpoints and slice: the controllers must not.
    server = ApiServer(etcd.url, bookmark_interval=0.5, advertise_address="198.51.100.1")
    await server.start()
    try:
        async with Client(server.url) as client:
            await selectorless_and_published(client, tmp_path)
    finally:
        await server.stop()


async def selectorless_and_published(client: Client, tmp_path: Path) -> None:
    api_ep = await client.get(Endpoints, "kubernetes", namespace="default")
    api_slice = await client.get(EndpointSlice, "kubernetes", namespace="default")
    async with manager(client):
        # Someone else's objects for a selectorless Service: never touched.
        await client.create(service("ext", selector={}, ip="10.43.0.30"))
        own_slice = await client.create(EndpointSlice.from_dict({
            "metadata": {"name": "ext-1", "namespace": "default", "labels": {SERVICE_NAME_LABEL: "ext"}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["198.51.100.7"]}],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}))
        own_ep = await client.create(Endpoints.from_dict({
            "metadata": {"name": "ext", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "198.51.100.7"}], "ports": [{"name": "http", "port": 80}]}]}))

        await client.create(service("peers", publish=True, ip="10.43.0.31"))
        await run_pod(client, "peers-0", "10.244.1.20", app="peers", ready=False)

        async def published() -> bool:
            return view(await slices_of(client, "peers")) == \
                {"peers-0": ((("http", 8080),), "10.244.1.20", True, True, False)} \
                and await endpoints_view(client, "peers") == {"ready": ["10.244.1.20"], "not_ready": [],
                                                              "ports": [8080]}

        await eventually(published, what="an unready pod published as ready")
        # A Service without pods has one empty placeholder slice and empty Endpoints.
        await client.create(service("empty", ip="10.43.0.32"))

        async def placeholder() -> bool:
            slices = await slices_of(client, "empty")
            return len(slices) == 1 and not slices[0].endpoints and await endpoints_view(client, "empty") == \
                {"ready": [], "not_ready": [], "ports": []}

        await eventually(placeholder, what="a placeholder slice")

        # Foreground deletion: the garbage collector deletes the slices first, the controller does
        # not re-create them meanwhile, and then the Service goes.
        await client.delete(Service, "empty", namespace="default", propagation_policy="Foreground")

        async def empty_gone() -> bool:
            try:
                await client.get(Service, "empty", namespace="default")
                return False
            except NotFound:
                return not await slices_of(client, "empty")

        await eventually(empty_gone, what="foreground deletion of a Service and its slices")
        await asyncio.sleep(0.5)  # the controllers have had every chance to touch ext's objects
        (slice_now,) = await slices_of(client, "ext")
        assert slice_now.metadata.resource_version == own_slice.metadata.resource_version
        ep_now = await client.get(Endpoints, "ext", namespace="default")
        assert ep_now.metadata.resource_version == own_ep.metadata.resource_version
        for obj in (api_ep, api_slice):
            now = await client.get(type(obj), "kubernetes", namespace="default")
            assert now.metadata.resource_version == obj.metadata.resource_version

        # The real kubectl reads both kinds (in full: the server's table columns for them are not
        # this controller's business).
        if KUBECTL.exists():
            k = Kubectl(client.server, tmp_path)
            out = (await k.run("get", "endpointslices", "-l", f"{SERVICE_NAME_LABEL}=peers", "-o", "json")).stdout
            (item,) = json.loads(out)["items"]
            assert item["addressType"] == "IPv4" and item["ports"][0]["port"] == 8080
            assert item["endpoints"][0]["addresses"] == ["10.244.1.20"]
            out = (await k.run("get", "endpoints", "peers", "-o", "json")).stdout
            assert json.loads(out)["subsets"][0]["addresses"][0]["ip"] == "10.244.1.20"


@contextlib.asynccontextmanager
async def writes_of(client: Client, model: type[KubeModel] = EndpointSlice) -> AsyncIterator[list[tuple[str, str]]]:
    """Every write of `model` objects from now on, as (event type, name)."""
    listed = await client.list(model, namespace="default")
    events: list[tuple[str, str]] = []

    async def watch() -> None:
        async with client.watch(model, namespace="default",
                                resource_version=listed.resource_version) as stream:
            async for ev in stream:
                if ev.type != "BOOKMARK":
                    events.append((ev.type, object_meta(ev.object).name or ""))

    watcher = asyncio.create_task(watch())
    try:
        yield events
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def test_250_pods_three_slices_one_change_one_write(client: Client) -> None:
    names = [f"web-{i:03d}" for i in range(250)]
    ips = {n: f"10.244.{2 + i // 200}.{i % 200 + 2}" for i, n in enumerate(names)}
    async with manager(client):
        await client.create(service())
        for start in range(0, 250, 25):
            await asyncio.gather(*(run_pod(client, n, ips[n]) for n in names[start:start + 25]))

        async def all_ready() -> bool:
            v = view(await slices_of(client, "web"))
            return len(v) == 250 and all(ready for _, _, ready, _, _ in v.values())

        await eventually(all_ready, timeout=60, what="250 ready endpoints")
        slices = await slices_of(client, "web")
        assert len(slices) == 3 and max(len(s.endpoints) for s in slices) <= 100
        holder = next(s.metadata.name for s in slices
                      if any(e.target_ref and e.target_ref.name == "web-137" for e in s.endpoints))
        await asyncio.sleep(0.5)  # let anything in flight land before counting

        async with writes_of(client) as writes:
            await set_ready(client, "web-137", ips["web-137"], False)

            async def flipped() -> bool:
                return view(await slices_of(client, "web"))["web-137"][2] is False

            await eventually(flipped, what="the unready endpoint")
            await asyncio.sleep(1.0)  # any further write would show up by now
            assert writes == [("MODIFIED", holder)]

    # A fresh controller-manager finds everything right and writes nothing.
    async with writes_of(client) as writes, writes_of(client, Endpoints) as mirror_writes, manager(client):
        await asyncio.sleep(1.5)
    assert writes == [] and mirror_writes == []


async def test_a_service_deleted_while_the_manager_is_down_loses_its_objects(client: Client) -> None:
    await client.create(service())
    await run_pod(client, "web-a", "10.244.1.10")
    async with manager(client):
        async def written() -> bool:
            return len(view(await slices_of(client, "web"))) == 1 and await endpoints_view(client, "web") is not None

        await eventually(written, what="slices and Endpoints")
    await client.delete(Service, "web", namespace="default")
    async with manager(client):
        async def gone() -> bool:
            return not await slices_of(client, "web") and await endpoints_view(client, "web") is None

        await eventually(gone, what="the leftovers found at startup and removed")


async def test_a_deployment_behind_a_service(client: Client) -> None:
    """The whole chain: Deployment -> ReplicaSet -> pods scheduled onto hollow nodes that report
    them running -> slices; scaling down shrinks them."""
    async with cluster(client, nodes=2) as c:
        await client.create(service(ports=[{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]))
        await client.create(deployment("web", 3))

        async def endpoints(n: int) -> bool:
            v = view(await slices_of(client, "web"))
            ready = {name for name, (_, _, r, _, _) in v.items() if r}
            pods = {p.metadata.name for p in await c.ready_pods(app="web")}
            return len(ready) == n and ready == pods and all(ports == (("http", 8080),) for ports, *_ in v.values())

        await eventually(lambda: endpoints(3), what="3 ready endpoints")
        await client.update_scale(Deployment, "web", 1, namespace="default")
        await eventually(lambda: endpoints(1), what="1 ready endpoint after scaling down")
