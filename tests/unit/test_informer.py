"""Informer logic that is awkward to provoke on a real server: handler errors, index
maintenance, the exact diff a relist produces. The fake below stands in for
`api.client.Client` only; the real list/watch/Gone path is covered by
tests/integration/test_informer.py and tests/integration/test_client.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from api import errors
from api.client import Client, ListResult
from api.core import Pod
from api.informer import Informer, object_key, split_key
from api.watch import Backoff, WatchEvent


def pod(name: str, rv: int, *, ns: str = "default", node: str | None = None) -> Pod:
    return Pod.from_dict({"metadata": {"name": name, "namespace": ns, "resourceVersion": str(rv)},
                          "spec": {"nodeName": node, "containers": [{"name": "c"}]}})


class Script:
    """A fake `Client`: each list returns the next snapshot; each watch yields its events then
    raises Gone (so the informer lists again), or blocks forever after the last script."""

    def __init__(self, rounds: list[tuple[list[Pod], list[WatchEvent[Pod]]]]) -> None:
        self.rounds = rounds
        self.lists = 0
        self.watch_rvs: list[str | None] = []

    async def list_all(self, model: type[Pod], **_: Any) -> ListResult[Pod]:
        items, _events = self.rounds[min(self.lists, len(self.rounds) - 1)]
        self.lists += 1
        return ListResult(items=items, resource_version=str(max([0, *(int(p.metadata.resource_version or 0)
                                                                        for p in items)])))

    def watch(self, model: type[Pod], *, resource_version: str | None = None, **_: Any) -> _Stream:
        self.watch_rvs.append(resource_version)
        last = self.lists >= len(self.rounds)
        return _Stream(self.rounds[self.lists - 1][1], gone=not last)


class _Stream:
    def __init__(self, events: list[WatchEvent[Pod]], *, gone: bool) -> None:
        self.events = events
        self.gone = gone

    async def __aenter__(self) -> AsyncIterator[WatchEvent[Pod]]:
        return self._run()

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def _run(self) -> AsyncIterator[WatchEvent[Pod]]:
        for ev in self.events:
            yield ev
        if self.gone:
            raise errors.Gone("too old resource version")
        await asyncio.Event().wait()


class Recorder:
    def __init__(self) -> None:
        self.log: list[tuple[str, str, str | None]] = []

    def add(self, p: Pod) -> None:
        self.log.append(("add", object_key(p), p.metadata.resource_version))

    def update(self, old: Pod, new: Pod) -> None:
        self.log.append(("update", object_key(new), new.metadata.resource_version))

    def delete(self, p: Pod) -> None:
        self.log.append(("delete", object_key(p), p.metadata.resource_version))


def informer_for(script: Script, **kw: Any) -> Informer[Pod]:
    return Informer(cast(Client, script), Pod, backoff=Backoff(initial=0.001, cap=0.01), **kw)


async def run_until(inf: Informer[Pod], condition: Any, timeout: float = 2) -> None:
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(inf.run())
        async with asyncio.timeout(timeout):
            # Polling: the conditions mix cache state and handler logs, no single event covers them.
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.001)
        task.cancel()


def test_keys() -> None:
    assert object_key(pod("a", 1)) == "default/a"
    assert split_key("default/a") == ("default", "a")
    assert split_key("node-1") == (None, "node-1")


async def test_relist_after_gone_hands_handlers_the_difference() -> None:
    script = Script([
        ([pod("a", 1), pod("b", 2), pod("c", 3)],
         [WatchEvent("MODIFIED", pod("a", 4)), WatchEvent("BOOKMARK", pod("", 5))]),
        # After Gone: b unchanged, a changed again, c gone, d new.
        ([pod("a", 7), pod("b", 2), pod("d", 6)], [WatchEvent("DELETED", pod("d", 8))]),
    ])
    rec = Recorder()
    inf = informer_for(script)
    inf.add_handler(on_add=rec.add, on_update=rec.update, on_delete=rec.delete)
    await run_until(inf, lambda: len(rec.log) >= 8)
    assert rec.log == [
        ("add", "default/a", "1"), ("add", "default/b", "2"), ("add", "default/c", "3"),
        ("update", "default/a", "4"),
        ("update", "default/a", "7"), ("add", "default/d", "6"), ("delete", "default/c", "3"),
        ("delete", "default/d", "8"),
    ]
    assert script.watch_rvs[:2] == ["3", "7"]
    assert sorted(inf.keys()) == ["default/a", "default/b"]
    assert inf.resource_version == "8"


async def test_indexes_follow_updates_and_deletes() -> None:
    script = Script([
        ([pod("a", 1, node="n1"), pod("b", 2, node="n1"), pod("c", 3, ns="other")],
         [WatchEvent("MODIFIED", pod("a", 4, node="n2")), WatchEvent("DELETED", pod("b", 5, node="n1"))]),
    ])
    inf = informer_for(script, indexers={"node": lambda p: [p.spec.node_name] if p.spec.node_name else []})
    await run_until(inf, lambda: inf.resource_version == "5")
    assert [p.metadata.name for p in inf.by_index("node", "n2")] == ["a"]
    assert inf.by_index("node", "n1") == []
    assert [p.metadata.name for p in inf.list(namespace="other")] == ["c"]
    assert len(inf.list()) == 2
    with pytest.raises(KeyError):
        inf.by_index("nope", "x")


async def test_failing_handler_does_not_stop_others_and_late_handler_gets_adds() -> None:
    script = Script([([pod("a", 1)], [WatchEvent("ADDED", pod("b", 2))])])
    rec = Recorder()
    inf = informer_for(script)

    def broken(p: Pod) -> None:
        raise RuntimeError("handler bug")

    inf.add_handler(on_add=broken)
    inf.add_handler(on_add=rec.add)
    await run_until(inf, lambda: len(rec.log) == 2)
    late = Recorder()
    inf.add_handler(on_add=late.add)
    assert sorted(late.log) == [("add", "default/a", "1"), ("add", "default/b", "2")]


async def test_resync_replays_cached_objects_as_updates() -> None:
    script = Script([([pod("a", 1)], [])])
    rec = Recorder()
    inf = informer_for(script, resync_period=0.01)
    inf.add_handler(on_update=rec.update)
    await run_until(inf, lambda: len(rec.log) >= 2)
    assert set(rec.log) == {("update", "default/a", "1")}


async def test_wait_synced_and_single_run() -> None:
    script = Script([([pod("a", 1)], [])])
    inf = informer_for(script)
    with pytest.raises(TimeoutError):
        await inf.wait_synced(timeout=0.01)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(inf.run())
        await inf.wait_synced(timeout=1)
        assert inf.has_synced() and inf.get("default/a") is not None
        with pytest.raises(RuntimeError):
            await inf.run()
        task.cancel()
