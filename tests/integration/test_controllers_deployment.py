"""Deployments end to end: real etcd and API server, hollow nodes, the real scheduler and the
controller-manager."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from api.apps import Deployment, ReplicaSet
from api.client import Client
from api.core import Pod
from api.informer import Informer
from controllers import deployment_core as dc
from controllers.podutil import is_active, is_ready
from tests.integration.controllers_support import cluster, deployment, eventually

pytestmark = pytest.mark.slow


async def test_spread_rollout_within_bounds_and_rollback(client: Client) -> None:
    async with cluster(client, nodes=5, ready_delay=0.1) as c:
        await client.create(deployment("web", 20, surge=3, unavailable=2))
        await eventually(lambda: c.rolled_out("web"), timeout=30, what="first rollout")
        pods = await c.ready_pods(app="web")
        assert len(pods) == 20
        per_node = Counter(p.spec.node_name for p in pods)
        assert len(per_node) == 5 and max(per_node.values()) - min(per_node.values()) <= 2, per_node
        rs1 = (await client.list(ReplicaSet, namespace="default")).items
        assert len(rs1) == 1 and rs1[0].metadata.name == \
            f"web-{dc.pod_template_hash(rs1[0].spec.template)}"  # type: ignore[arg-type]

        # Watch every pod change during the image change; check the bounds at each one.
        violations: list[str] = []
        seen: dict[str, Pod] = {p.metadata.name or "": p for p in await c.pods(app="web")}

        def check(_: object = None) -> None:
            active = [p for p in seen.values() if is_active(p)]
            ready = [p for p in active if is_ready(p)]
            if len(active) > 23:
                violations.append(f"{len(active)} pods")
            if len(ready) < 18:
                violations.append(f"{len(ready)} ready")

        inf = Informer(client, Pod, namespace="default", label_selector="app=web")

        def put(p: Pod) -> None:
            seen[p.metadata.name or ""] = p
            check()

        def drop(p: Pod) -> None:
            seen.pop(p.metadata.name or "", None)
            check()

        inf.add_handler(on_add=put, on_update=lambda _o, n: put(n), on_delete=drop)
        watcher = asyncio.create_task(inf.run())
        await inf.wait_synced(10)
        d = await client.get(Deployment, "web", namespace="default")
        d.spec.template.spec.containers[0].image = "web:2"
        await client.update(d)
        await eventually(lambda: c.rolled_out("web"), timeout=40, what="image change rollout")
        watcher.cancel()
        assert not violations, violations[:5]
        pods = await c.ready_pods(app="web")
        assert len(pods) == 20 and {p.spec.containers[0].image for p in pods} == {"web:2"}
        d = await client.get(Deployment, "web", namespace="default")
        assert (d.metadata.annotations or {})[dc.REVISION] == "2"
        st = d.status
        assert st is not None
        assert (st.replicas, st.updated_replicas, st.ready_replicas, st.available_replicas) == (20, 20, 20, 20)
        progressing, available = st.condition("Progressing"), st.condition("Available")
        assert progressing is not None and progressing.reason == "NewReplicaSetAvailable"
        assert available is not None and available.status == "True"

        # Rollback the way `kubectl rollout undo` does: the old ReplicaSet's template goes back in.
        old = next(rs for rs in (await client.list(ReplicaSet, namespace="default")).items
                   if (rs.metadata.annotations or {}).get(dc.REVISION) == "1")
        assert old.spec.template is not None
        tmpl = old.spec.template.copy_deep()
        assert tmpl.metadata is not None and tmpl.metadata.labels is not None
        tmpl.metadata.labels.pop(dc.HASH_LABEL)
        await client.patch(Deployment, "web", {"spec": {"template": tmpl.to_dict()}}, namespace="default")
        await eventually(lambda: c.rolled_out("web"), timeout=40, what="rollback")
        pods = await c.ready_pods(app="web")
        assert len(pods) == 20 and {p.spec.containers[0].image for p in pods} == {"web:1"}
        back = await client.get(ReplicaSet, old.metadata.name or "", namespace="default")
        assert (back.metadata.annotations or {})[dc.REVISION] == "3" and back.spec.replicas == 20


async def test_deleted_pod_is_replaced(client: Client) -> None:
    async with cluster(client, nodes=2) as c:
        await client.create(deployment("api", 3))
        await eventually(lambda: c.rolled_out("api"), what="rollout")
        victim = (await c.ready_pods(app="api"))[0]
        await client.delete(Pod, victim.metadata.name or "", namespace="default")

        async def replaced() -> bool:
            pods = await c.ready_pods(app="api")
            return len(pods) == 3 and victim.metadata.name not in {p.metadata.name for p in pods}

        await eventually(replaced, what="replacement pod")


async def test_restart_mid_rollout_finishes_without_duplicates(client: Client) -> None:
    async with cluster(client, nodes=3, ready_delay=0.3) as c:
        await client.create(deployment("job", 10, surge=2, unavailable=0))
        await eventually(lambda: c.rolled_out("job"), timeout=30, what="first rollout")
        d = await client.get(Deployment, "job", namespace="default")
        d.spec.template.spec.containers[0].image = "web:2"
        await client.update(d)

        async def midway() -> bool:
            pods = await c.ready_pods(app="job")
            return any(p.spec.containers[0].image == "web:2" for p in pods)

        await eventually(midway, what="rollout under way")
        await c.manager.kill()
        await asyncio.sleep(0.5)
        c.manager.start()
        await eventually(lambda: c.rolled_out("job"), timeout=40, what="rollout after restart")
        pods = [p for p in await c.pods(app="job") if is_active(p)]
        assert len(pods) == 10 and {p.spec.containers[0].image for p in pods} == {"web:2"}
        rss = (await client.list(ReplicaSet, namespace="default")).items
        assert sorted(rs.spec.replicas or 0 for rs in rss) == [0, 10]
        assert len({rs.metadata.name for rs in rss}) == 2
