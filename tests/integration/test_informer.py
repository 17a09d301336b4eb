"""Informer against a real API server on a real etcd: handlers, cache, indexes, restarts, relist."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from api import errors
from api.client import Client
from api.core import Pod
from api.informer import Informer, object_key
from api.watch import Backoff
from apiserver.app import STORAGE
from tests.support.cluster import ApiServer, Etcd


def make_pod(name: str, *, labels: dict[str, str] | None = None) -> Pod:
    return Pod.from_dict({"metadata": {"name": name, "labels": labels or {}},
                          "spec": {"containers": [{"name": "c", "image": "busybox"}]}})


class Recorder:
    """Handlers that log what they see and wake waiters."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    def attach(self, inf: Informer[Pod]) -> None:
        inf.add_handler(on_add=lambda p: self._note("add", p), on_update=lambda o, n: self._note("update", n),
                        on_delete=lambda p: self._note("delete", p))

    def _note(self, what: str, p: Pod) -> None:
        self.log.append((what, object_key(p)))
        self.changed.set()

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


@asynccontextmanager
async def running(inf: Informer[Pod]) -> AsyncIterator[Informer[Pod]]:
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(inf.run())
        await inf.wait_synced(timeout=5)
        yield inf
        task.cancel()


async def test_handlers_cache_and_indexes_follow_the_server(client: Client) -> None:
    await client.create(make_pod("existing", labels={"app": "web"}))
    inf = Informer(client, Pod, namespace="default",
                   indexers={"app": lambda p: [(p.metadata.labels or {}).get("app", "")]})
    rec = Recorder()
    rec.attach(inf)
    async with running(inf):
        assert rec.log == [("add", "default/existing")]
        created = await client.create(make_pod("new", labels={"app": "db"}))
        await client.patch(Pod, "new", {"metadata": {"labels": {"app": "web"}}})
        await client.delete(Pod, "existing", grace_period_seconds=0)
        await rec.wait_for(lambda: len(rec.log) == 4)
        assert rec.log[1:] == [("add", "default/new"), ("update", "default/new"), ("delete", "default/existing")]
        cached = inf.get("default/new")
        assert cached is not None and cached.metadata.uid == created.metadata.uid
        assert [p.metadata.name for p in inf.by_index("app", "web")] == ["new"]
        assert inf.by_index("app", "db") == []
        assert inf.get("default/existing") is None
        # Objects created elsewhere are not in a namespaced informer.
        await client.create(make_pod("system"), namespace="kube-system")
        late = Recorder()
        late.attach(inf)
        assert late.log == [("add", "default/new")]


async def test_informer_sees_every_change_across_an_apiserver_restart(client: Client,
                                                                      apiserver: ApiServer) -> None:
    inf = Informer(client, Pod, backoff=Backoff(initial=0.05, cap=0.5))
    rec = Recorder()
    rec.attach(inf)
    async with running(inf):
        await client.create(make_pod("a"))
        await rec.wait_for(lambda: len(rec.log) == 1)
        await apiserver.stop()
        await asyncio.sleep(0.2)
        await apiserver.start()
        await client.create(make_pod("b"))
        await client.patch(Pod, "a", {"metadata": {"labels": {"v": "2"}}})
        await client.delete(Pod, "b", grace_period_seconds=0)
        await rec.wait_for(lambda: len(rec.log) == 4)
        assert rec.log == [("add", "default/a"), ("add", "default/b"), ("update", "default/a"),
                           ("delete", "default/b")]
        a = inf.get("default/a")
        assert a is not None and a.metadata.labels == {"v": "2"}


async def test_gone_relists_and_handlers_see_the_difference(etcd: Etcd,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """While the informer's API server is down, another one changes pods and compacts etcd:
    the informer's resume is refused with 410, it relists, and handlers get the diff."""
    watched = ApiServer(etcd.url)
    other = ApiServer(etcd.url)
    await watched.start()
    await other.start()
    try:
        async with Client(watched.url) as wc, Client(other.url) as oc:
            for name in ("stays", "changes", "goes"):
                await oc.create(make_pod(name))
            calls = 0
            real_list_all = wc.list_all

            async def counting_list_all(*args: Any, **kw: Any) -> Any:
                nonlocal calls
                calls += 1
                return await real_list_all(*args, **kw)

            def list_count() -> int:
                return calls

            wc.list_all = counting_list_all  # type: ignore[method-assign]
            inf = Informer(wc, Pod, namespace="default", backoff=Backoff(initial=0.05, cap=0.5))
            rec = Recorder()
            rec.attach(inf)
            async with running(inf):
                await rec.wait_for(lambda: len(rec.log) == 3)
                rv_before = inf.resource_version
                lists_before = list_count()
                await watched.stop()
                await oc.patch(Pod, "changes", {"metadata": {"labels": {"v": "2"}}})
                await oc.delete(Pod, "goes", grace_period_seconds=0)
                await oc.create(make_pod("arrives"))
                latest = (await oc.list(Pod)).resource_version
                await other.app[STORAGE].compact(int(latest))
                with caplog.at_level(logging.INFO, logger="api.informer"):
                    await watched.start()
                    await rec.wait_for(lambda: len(rec.log) == 6)
                assert any("watch expired" in r.getMessage() for r in caplog.records), "no 410 seen"
                assert lists_before < list_count(), "the informer did not list again"
                assert sorted(rec.log[3:]) == [("add", "default/arrives"), ("delete", "default/goes"),
                                               ("update", "default/changes")]
                assert sorted(inf.keys()) == ["default/arrives", "default/changes", "default/stays"]
                assert int(inf.resource_version or 0) >= int(latest) > int(rv_before or 0)
    finally:
        await watched.stop()
        await other.stop()


async def test_informer_sees_every_change_across_an_etcd_restart(client: Client, etcd: Etcd) -> None:
    inf = Informer(client, Pod, backoff=Backoff(initial=0.05, cap=0.5))
    rec = Recorder()
    rec.attach(inf)
    async with running(inf):
        await client.create(make_pod("a"))
        await rec.wait_for(lambda: len(rec.log) == 1)
        etcd.stop()
        await asyncio.sleep(0.2)
        etcd.start()
        async with asyncio.timeout(10):
            while True:  # the API server answers 503 until its etcd client has reconnected
                try:
                    await client.create(make_pod("b"))
                    break
                except errors.ServiceUnavailable:
                    await asyncio.sleep(0.1)
        await client.delete(Pod, "a", grace_period_seconds=0)
        await rec.wait_for(lambda: len(rec.log) == 3)
        assert rec.log == [("add", "default/a"), ("add", "default/b"), ("delete", "default/a")]
