"""The real scheduler and controller-manager, and kubelet-like nodes, each under its own
certificate identity over https: the rules give them what they need (a deployment rolls out,
scales down, and a namespace is emptied and deleted) and the server refuses them nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import pytest

from api.apps import Deployment
from api.client import Client
from api.core import Namespace, Pod
from api.errors import AlreadyExists, NotFound
from api.meta import ObjectMeta
from apiserver.auth.pki import ADMIN, CONTROLLER_MANAGER, SCHEDULER, node_identity
from controllers.manager import run_controller_manager
from controllers.podutil import is_active, is_ready
from scheduler.run import run_scheduler
from tests.hollow import HollowCluster
from tests.integration.controllers_support import deployment, eventually
from tests.support.secure import SecureApiServer

pytestmark = pytest.mark.slow


class NodeClient(Client):
    """A node's client for hollow nodes: kube-node-lease is created by the API server at start,
    and a node may not create namespaces, so the hollow cluster's attempt is answered here."""

    async def create(self, obj: Any, *, namespace: str | None = None) -> Any:
        if isinstance(obj, Namespace):
            raise AlreadyExists("namespaces are the API server's to create")
        return await super().create(obj, namespace=namespace)


async def test_components_work_under_their_own_identities(secure: SecureApiServer,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="apiserver.auth.authn")
    stop = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        admin = await stack.enter_async_context(Client(secure.url, ssl=secure.ssl_for(ADMIN)))
        sched_client = await stack.enter_async_context(Client(secure.url, ssl=secure.ssl_for(SCHEDULER)))
        cm_client = await stack.enter_async_context(Client(secure.url, ssl=secure.ssl_for(CONTROLLER_MANAGER)))
        for name in ("n1", "n2"):
            client = await stack.enter_async_context(NodeClient(secure.url, ssl=secure.ssl_for(node_identity(name))))
            hollow = await stack.enter_async_context(HollowCluster(client, lease_renew=0.2, status_every=0.5))
            await hollow.add_node(name)
        tasks = [asyncio.create_task(run_scheduler(sched_client, stop=stop, leader_elect=True)),
                 asyncio.create_task(run_controller_manager(cm_client, stop=stop, leader_elect=True))]
        try:
            await admin.create(Namespace(metadata=ObjectMeta(name="shop")))
            await admin.create(deployment("web", 4, namespace="shop"))

            async def ready(n: int) -> bool:
                pods = (await admin.list(Pod, namespace="shop")).items
                live = [p for p in pods if is_active(p) and is_ready(p)]
                return len(live) == n == len(pods) and {p.spec.node_name for p in live} <= {"n1", "n2"}

            await eventually(lambda: ready(4), timeout=30, what="4 pods scheduled and running")
            assert {p.spec.node_name for p in (await admin.list(Pod, namespace="shop")).items} == {"n1", "n2"}
            await admin.patch(Deployment, "web", {"spec": {"replicas": 1}}, namespace="shop")
            await eventually(lambda: ready(1), timeout=30, what="scaled down to 1 (nodes confirm deletions)")

            await admin.delete(Namespace, "shop")

            async def gone() -> bool:
                try:
                    await admin.get(Namespace, "shop")
                except NotFound:
                    return True
                return False

            await eventually(gone, timeout=30, what="namespace emptied and deleted by the controllers")
        finally:
            stop.set()
            for task in tasks:
                await asyncio.wait_for(task, 10)
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("forbidden")]
    assert not refused, f"a component was refused something it needs: {refused}"
