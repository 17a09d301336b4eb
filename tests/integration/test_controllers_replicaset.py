"""ReplicaSets on their own, and the Recreate and minReadySeconds paths of Deployments."""

from __future__ import annotations

import asyncio
import time

import pytest

from api.apps import Deployment, ReplicaSet
from api.client import Client
from api.core import Pod
from controllers.podutil import is_active
from tests.integration.controllers_support import cluster, deployment, eventually

pytestmark = pytest.mark.slow


def replicaset(name: str, replicas: int) -> ReplicaSet:
    return ReplicaSet.from_dict({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    })


def orphan(name: str, app: str) -> Pod:
    return Pod.from_dict({"metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
                          "spec": {"containers": [{"name": "c", "image": "busybox"}]}})


async def test_adopts_orphans_releases_relabelled_and_scales(client: Client) -> None:
    async with cluster(client, nodes=2) as c:
        await client.create(orphan("stray", "db"))
        await client.create(replicaset("db", 3))

        async def three_ready() -> bool:
            rs = await client.get(ReplicaSet, "db", namespace="default")
            return rs.status is not None and rs.status.ready_replicas == 3 and rs.status.replicas == 3

        await eventually(three_ready, what="3 ready replicas")
        pods = [p for p in await c.pods(app="db") if is_active(p)]
        assert len(pods) == 3  # the orphan was adopted: only two were created
        stray = await client.get(Pod, "stray", namespace="default")
        ref = stray.metadata.controller_ref()
        assert ref is not None and ref.kind == "ReplicaSet" and ref.name == "db"
        created = [p for p in pods if p.metadata.name != "stray"]
        assert all((p.metadata.name or "").startswith("db-") for p in created)

        # A pod relabelled out of the selector is released and replaced.
        await client.patch(Pod, "stray", {"metadata": {"labels": {"app": "debug"}}}, namespace="default")

        async def released() -> bool:
            p = await client.get(Pod, "stray", namespace="default")
            return not p.metadata.owner_references and len(await c.ready_pods(app="db")) == 3

        await eventually(released, what="released and replaced")

        # Scale down: exactly the surplus goes.
        await client.update_scale(ReplicaSet, "db", 1, namespace="default")

        async def one() -> bool:
            return len([p for p in await c.pods(app="db") if is_active(p)]) == 1

        await eventually(one, what="scaled down to 1")
        await asyncio.sleep(0.3)
        assert len([p for p in await c.pods(app="db") if is_active(p)]) == 1


async def test_recreate_never_overlaps(client: Client) -> None:
    async with cluster(client, nodes=2) as c:
        d = deployment("rc", 3).to_dict()
        d["spec"]["strategy"] = {"type": "Recreate"}
        await client.create(Deployment.from_dict(d))
        await eventually(lambda: c.rolled_out("rc"), what="first rollout")
        live = await client.get(Deployment, "rc", namespace="default")
        live.spec.template.spec.containers[0].image = "web:2"
        await client.update(live)
        overlap: list[tuple[str | None, str | None]] = []
        deadline = time.monotonic() + 30
        while not await c.rolled_out("rc") or (await client.get(Deployment, "rc", namespace="default")).metadata \
                .generation != 2:
            active = [(p.metadata.name, p.spec.containers[0].image) for p in await c.pods(app="rc") if is_active(p)]
            if not overlap and {image for _, image in active} == {"web:1", "web:2"}:
                overlap = active
            if time.monotonic() > deadline:
                dep = await client.get(Deployment, "rc", namespace="default")
                rss = [(rs.metadata.name, rs.spec.replicas, rs.status) for rs in
                       (await client.list(ReplicaSet, namespace="default")).items]
                raise AssertionError(f"Recreate rollout did not finish: {dep.status}, {rss}, pods {active}")
            await asyncio.sleep(0.02)
        assert not overlap, f"old and new pods ran together: {overlap}"
        final = [p.spec.containers[0].image for p in await c.ready_pods(app="rc")]
        assert final == ["web:2"] * 3


async def test_min_ready_seconds_delays_availability(client: Client) -> None:
    async with cluster(client, nodes=1) as c:
        await client.create(deployment("slow", 2, minReadySeconds=2))

        async def ready_not_available() -> bool:
            d = await client.get(Deployment, "slow", namespace="default")
            return d.status is not None and d.status.ready_replicas == 2

        await eventually(ready_not_available, what="pods ready")
        d = await client.get(Deployment, "slow", namespace="default")
        assert d.status is not None and (d.status.available_replicas or 0) < 2
        t0 = time.monotonic()
        await eventually(lambda: c.rolled_out("slow"), what="available after minReadySeconds")
        assert time.monotonic() - t0 > 0.5
