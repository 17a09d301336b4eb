"""Watch: no gap after a list, resume, selectors, bookmarks, initial events, 410 Gone,
and every event across an API server restart and an etcd restart."""

from __future__ import annotations

import asyncio
import time

import pytest

from apiserver.app import STORAGE
from apiserver.storage import Compacted
from tests.support.cluster import ApiServer
from tests.support.http import Http, pod
from tests.support.watching import WatchStream

PODS = "/api/v1/namespaces/default/pods"



def changes(stream: WatchStream) -> list[tuple[str, str]]:
    return stream.objects("ADDED", "MODIFIED", "DELETED")


async def test_watch_from_a_list_has_no_gap(http, apiserver):
    await http.post(PODS, pod("before"))
    _, listed = await http.get(PODS)
    rv = listed["metadata"]["resourceVersion"]
    await http.post(PODS, pod("between"))  # after the list, before the watch starts
    async with WatchStream(apiserver.url, PODS, resourceVersion=rv) as w:
        await http.patch(f"{PODS}/between", {"metadata": {"labels": {"x": "1"}}})
        await http.delete(f"{PODS}/between")
        await w.wait_for(lambda s: len(changes(s)) == 3)
    assert changes(w) == [("ADDED", "between"), ("MODIFIED", "between"), ("DELETED", "between")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in w.events if e["type"] != "BOOKMARK"]
    assert versions == sorted(versions) and versions[0] > int(rv)


async def test_watch_without_version_starts_with_current_state(http, apiserver):
    await http.post(PODS, pod("a"))
    await http.post(PODS, pod("b"))
    async with WatchStream(apiserver.url, PODS) as w:
        await w.wait_for(lambda s: len(changes(s)) == 2)
        await http.post(PODS, pod("c"))
        await w.wait_for(lambda s: len(changes(s)) == 3)
    assert changes(w) == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]


async def test_selector_watch_sees_objects_enter_and_leave(http, apiserver):
    await http.post(PODS, pod("web", labels={"app": "web"}))
    _, listed = await http.get(PODS)
    async with WatchStream(apiserver.url, PODS, labelSelector="app=web",
                           resourceVersion=listed["metadata"]["resourceVersion"]) as w:
        await http.patch(f"{PODS}/web", {"metadata": {"labels": {"app": "other"}}})
        await http.post(PODS, pod("db", labels={"app": "db"}))
        await http.patch(f"{PODS}/web", {"metadata": {"labels": {"app": "web"}}})
        await w.wait_for(lambda s: len(changes(s)) == 2)
    assert changes(w) == [("DELETED", "web"), ("ADDED", "web")]


async def test_bookmarks_carry_the_current_revision(http, apiserver):
    _, listed = await http.get(PODS)
    async with WatchStream(apiserver.url, PODS, allowWatchBookmarks="true",
                           resourceVersion=listed["metadata"]["resourceVersion"]) as w:
        await http.post("/api/v1/namespaces/kube-system/pods", pod("elsewhere"))
        await w.wait_for(lambda s: any(e["type"] == "BOOKMARK" for e in s.events), timeout=5)
    bookmark = next(e for e in w.events if e["type"] == "BOOKMARK")
    assert bookmark["object"]["kind"] == "Pod"
    assert int(bookmark["object"]["metadata"]["resourceVersion"]) > int(listed["metadata"]["resourceVersion"])
    assert changes(w) == []  # the other namespace's pod is not in this watch


async def test_send_initial_events_ends_with_an_annotated_bookmark(http, apiserver):
    await http.post(PODS, pod("a"))
    async with WatchStream(apiserver.url, PODS, sendInitialEvents="true", allowWatchBookmarks="true",
                           resourceVersionMatch="NotOlderThan") as w:
        await w.wait_for(lambda s: any(e["type"] == "BOOKMARK" for e in s.events))
    assert w.events[0]["type"] == "ADDED"
    marker = next(e for e in w.events if e["type"] == "BOOKMARK")
    assert marker["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_timeout_seconds_ends_the_stream(http, apiserver):
    async with WatchStream(apiserver.url, PODS, timeoutSeconds="1") as w:
        assert w._task is not None
        await asyncio.wait_for(asyncio.shield(w._task), 5)


async def test_compacted_revision_gets_410_gone(http, apiserver, etcd):
    _, first = await http.post(PODS, pod("a"))
    for i in range(3):
        await http.post(PODS, pod(f"b{i}"))
    await apiserver.restart()  # the new watch cache starts after these revisions
    storage = apiserver.app[STORAGE]
    await storage.compact(await storage.current_revision())
    async with WatchStream(apiserver.url, PODS, resourceVersion=first["metadata"]["resourceVersion"]) as w:
        await w.wait_for(lambda s: bool(s.events))
    error = w.events[0]
    assert error["type"] == "ERROR"
    assert error["object"]["code"] == 410 and error["object"]["kind"] == "Status"


async def test_watch_from_before_the_cache_window_replays_etcd_history(http, apiserver):
    _, first = await http.post(PODS, pod("a"))
    await http.post(PODS, pod("b"))
    await apiserver.restart()
    async with WatchStream(apiserver.url, PODS, resourceVersion=first["metadata"]["resourceVersion"]) as w:
        await w.wait_for(lambda s: len(changes(s)) == 1)
        await http.post(PODS, pod("c"))
        await w.wait_for(lambda s: len(changes(s)) == 2)
    assert changes(w) == [("ADDED", "b"), ("ADDED", "c")]


async def test_every_event_is_seen_across_apiserver_and_etcd_restarts(http, apiserver, etcd):
    _, listed = await http.get(PODS)
    async with WatchStream(apiserver.url, PODS, resume=True,
                           resourceVersion=listed["metadata"]["resourceVersion"]) as w:
        await http.post(PODS, pod("p0"))
        await w.wait_for(lambda s: len(changes(s)) == 1)
        await apiserver.restart()
        await http.post(PODS, pod("p1"))
        await http.patch(f"{PODS}/p0", {"metadata": {"labels": {"after": "apiserver-restart"}}})
        await w.wait_for(lambda s: len(changes(s)) == 3)
        etcd.stop()
        etcd.start()
        for _ in range(50):  # writes fail with 503 until the server reconnects to etcd
            code, _ = await http.post(PODS, pod("p2"))
            if code == 201:
                break
            assert code in (503, 500), code
            await asyncio.sleep(0.1)
        await http.delete(f"{PODS}/p1")
        await w.wait_for(lambda s: len(changes(s)) == 5, timeout=15)
    assert changes(w) == [("ADDED", "p0"), ("ADDED", "p1"), ("MODIFIED", "p0"), ("ADDED", "p2"),
                          ("DELETED", "p1")]
    assert w.reconnects >= 1


async def test_periodic_compaction_bounds_history(etcd):
    server = ApiServer(etcd.url, compaction_interval=0.3, compaction_retain=5)
    await server.start()
    h = Http(server.url)
    try:
        _, first = await h.post(PODS, pod("a"))
        for i in range(10):
            await h.patch(f"{PODS}/a", {"metadata": {"labels": {"n": str(i)}}})
        await asyncio.sleep(1.0)  # a few compaction rounds
        storage = server.app[STORAGE]
        with pytest.raises(Compacted):
            await storage.list("/registry/pods/", revision=int(first["metadata"]["resourceVersion"]))
        # Recent history is kept: the last revisions can still be read.
        current = await storage.current_revision()
        kvs, _, _ = await storage.list("/registry/pods/", revision=current - 3)
        assert kvs
    finally:
        await h.close()
        await server.stop()


async def test_watch_from_a_revision_reached_by_writes_outside_the_registry(http, apiserver):
    """A resourceVersion etcd reached through another user's writes (a shared etcd) is
    current for kubelite: a watch from it starts at once, not after waiting in vain for an
    event at that revision, and sees what follows."""
    await http.post(PODS, pod("a"))
    foreign = await apiserver.app[STORAGE].create("/kltest-other-app/key", b"not kubelite's")
    started = time.monotonic()
    code, body = await http.get(PODS, params={"watch": "true", "resourceVersion": str(foreign),
                                              "timeoutSeconds": "1"})
    assert code == 200 and body == ""  # an empty stream that ended after its 1 s
    assert time.monotonic() - started < 2.5
    async with WatchStream(apiserver.url, PODS, resourceVersion=str(foreign)) as w:
        await http.post(PODS, pod("b"))
        await w.wait_for(lambda s: len(changes(s)) == 1)
    assert changes(w) == [("ADDED", "b")]


async def test_watch_and_list_from_a_future_revision_get_504_too_large(http, apiserver):
    storage = apiserver.app[STORAGE]
    future = str(await storage.current_revision() + 1000)
    for params in ({"watch": "true", "resourceVersion": future}, {"resourceVersion": future}):
        code, status = await http.get(PODS, params=params)
        assert code == 504, status
        assert status["reason"] == "Timeout" and "Too large resource version" in status["message"]
        assert status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
