r"""The watch cache: one etcd watch for the whole registry, fanned out to HTTP watchers.

    etcd --(one watch on /registry/, prev_kv)--> WatchCache --> ResourceCache (pods)  --> watchers
                                                           \-> ResourceCache (nodes) --> watchers

Each ResourceCache keeps the current objects of its resource and a bounded window of
recent events. The promises it keeps:

- `revision` only grows; every object and event in the cache is as of `revision`.
- A watcher registered from revision N receives exactly the events with revision > N,
  in order, with no gap: registration and the snapshot or replay it starts from are
  taken without yielding to the event loop, so no event can slip in between.
- A watch from a revision older than the window is not served here (`TooOld`); the
  caller falls back to etcd itself, which answers with 410 Gone once compacted.

Because the watch covers every key kubelite writes, the cache's revision reaches etcd's
current revision as soon as the last write is delivered; a consistent LIST therefore
asks etcd for its current revision and waits for the cache to reach it (as Kubernetes'
consistent reads from cache do), instead of reading every object from etcd.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from api import jsoncodec
from apiserver.storage import REGISTRY, Compacted, Storage, StorageError, Unavailable, WatchEvent

log = logging.getLogger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
# How long a revision etcd has already reached may take to arrive through the watch before
# the cache asks etcd whether anything under /registry/ changed at all (`_unchanged_until`).
_EVENTS_EXPECTED_WITHIN = 0.1
Predicate = Callable[[dict[str, Any]], bool]


def with_resource_version(value: bytes, revision: int) -> dict[str, Any]:
    """Decode a stored object and give it its resourceVersion (the etcd mod revision)."""
    obj: dict[str, Any] = jsoncodec.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return obj


_METADATA = b'"metadata":{'


def splice_resource_version(value: bytes, revision: int) -> bytes | None:
    """The stored bytes with `metadata.resourceVersion` inserted, without decoding them.

    Works on what `registry.encode` writes (apiVersion, kind, then metadata first among the
    objects: the first `"metadata":{` is the top-level one, since a string value cannot
    contain an unescaped quote). Returns None for anything else; the caller decodes.
    """
    at = value.find(_METADATA, 0, 160)
    if not value.startswith(b'{"apiVersion":') or at < 0:
        return None
    at += len(_METADATA)
    version = b'"resourceVersion":"' + str(revision).encode() + b'"'
    return value[:at] + version + (b"" if value[at:at + 1] == b"}" else b",") + value[at:]


class CachedObject:
    """An object as stored, with its resourceVersion. Decoding and encoding are lazy: a
    create's watch event costs nothing until a list, a watcher or a selector needs it."""

    __slots__ = ("_obj", "_raw", "_value", "key", "revision")

    def __init__(self, key: str, obj: dict[str, Any] | None, revision: int, *, value: bytes | None = None) -> None:
        self.key = key
        self.revision = revision
        self._obj = obj
        self._value = value
        self._raw: bytes | None = None

    @property
    def obj(self) -> dict[str, Any]:
        if self._obj is None:
            assert self._value is not None
            self._obj = with_resource_version(self._value, self.revision)
        return self._obj

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            if self._obj is None and self._value is not None:
                self._raw = splice_resource_version(self._value, self.revision)
            if self._raw is None:
                self._raw = jsoncodec.dumps(self.obj)
        return self._raw

    @classmethod
    def decode(cls, key: str, value: bytes, revision: int) -> CachedObject:
        return cls(key, None, revision, value=value)


@dataclass(slots=True)
class CacheEvent:
    type: EventType
    revision: int
    current: CachedObject  # for DELETED: the last state, with the deletion revision
    previous: CachedObject | None


class TooOld(Exception):
    """The requested revision is older than the cache's window."""


@dataclass(eq=False)
class CacheWatcher:
    """One HTTP watch: a queue of (type, object) the handler drains. `None` ends it."""

    predicate: Predicate
    queue: asyncio.Queue[tuple[str, CachedObject] | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=20000)
    )
    closed: bool = False

    def offer(self, event: CacheEvent) -> None:
        """Deliver `event` as this watcher sees it through its selectors."""
        if self.closed:
            return
        now = self.predicate(event.current.obj)
        before = event.previous is not None and self.predicate(event.previous.obj)
        kind: str | None
        if event.type == "ADDED":
            kind = "ADDED" if now else None
        elif event.type == "DELETED":
            kind = "DELETED" if now else None
        elif now and before:
            kind = "MODIFIED"
        elif now:
            kind = "ADDED"  # started matching the selector
        elif before:
            kind = "DELETED"  # stopped matching the selector
        else:
            kind = None
        if kind is not None:
            self.put(kind, event.current)

    def put(self, kind: str, obj: CachedObject) -> None:
        try:
            self.queue.put_nowait((kind, obj))
        except asyncio.QueueFull:
            # A watcher that cannot keep up is closed; the client resumes from its last
            # resourceVersion, as with Kubernetes' watch cache.
            log.warning("closing a watcher that fell %d events behind", self.queue.qsize())
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)


class ResourceCache:
    def __init__(self, resource: str, *, window: int) -> None:
        self.resource = resource
        self.objects: dict[str, CachedObject] = {}
        self.events: deque[CacheEvent] = deque(maxlen=window)
        # Watches from any revision >= `oldest` can be served from `events`.
        self.oldest = 0
        self.watchers: set[CacheWatcher] = set()

    def reset(self, objects: Iterable[CachedObject], revision: int) -> None:
        self.objects = {o.key: o for o in objects}
        self.events.clear()
        self.oldest = revision
        for w in list(self.watchers):
            w.close()
        self.watchers.clear()

    def apply(self, ev: WatchEvent) -> None:
        previous = self.objects.get(ev.key)
        if ev.deleted:
            if previous is None:
                return
            gone = CachedObject(ev.key, dict(previous.obj), ev.revision)
            gone.obj["metadata"] = {**previous.obj.get("metadata", {}), "resourceVersion": str(ev.revision)}
            del self.objects[ev.key]
            event = CacheEvent("DELETED", ev.revision, gone, previous)
        else:
            current = CachedObject.decode(ev.key, ev.value, ev.revision)
            self.objects[ev.key] = current
            event = CacheEvent("ADDED" if previous is None else "MODIFIED", ev.revision, current, previous)
        if len(self.events) == self.events.maxlen:
            self.oldest = self.events[0].revision
        self.events.append(event)
        for w in list(self.watchers):
            w.offer(event)
            if w.closed:
                self.watchers.discard(w)

    def snapshot(self, prefix: str = "") -> list[CachedObject]:
        """Current objects whose key starts with `prefix`, sorted by key."""
        if prefix:
            return [self.objects[k] for k in sorted(self.objects) if k.startswith(prefix)]
        return [self.objects[k] for k in sorted(self.objects)]

    def watch(self, predicate: Predicate, *, since: int | None, initial: bool) -> CacheWatcher:
        """Register a watcher. `since=None`: start now; `initial`: first send every current
        object as ADDED. Otherwise replay the window's events after `since`."""
        watcher = CacheWatcher(predicate)
        if since is not None and not initial:
            if since < self.oldest:
                raise TooOld(f"too old resource version: {since} ({self.oldest})")
            for event in self.events:
                if event.revision > since:
                    watcher.offer(event)
        if initial:
            for obj in self.snapshot():
                if predicate(obj.obj):
                    watcher.put("ADDED", obj)
        self.watchers.add(watcher)
        return watcher

    def unwatch(self, watcher: CacheWatcher) -> None:
        self.watchers.discard(watcher)
        watcher.closed = True


class WatchCache:
    """Owns the registry-wide etcd watch; `run()` is a long-lived task of the server."""

    def __init__(self, storage: Storage, resources: Iterable[str], *, window: int = 10000) -> None:
        self.storage = storage
        self.caches = {r: ResourceCache(r, window=window) for r in resources}
        self.revision = 0
        # The latest revision `_unchanged_until` proved the cache to be at without its events.
        self._proved = 0
        self._changed = asyncio.Condition()
        self.ready = asyncio.Event()

    def __getitem__(self, resource: str) -> ResourceCache:
        return self.caches[resource]

    async def _relist(self) -> None:
        kvs, revision, _ = await self.storage.list(REGISTRY)
        grouped: dict[str, list[CachedObject]] = {r: [] for r in self.caches}
        for kv in kvs:
            resource = kv.key[len(REGISTRY):].split("/", 1)[0]
            if resource in grouped:
                grouped[resource].append(CachedObject.decode(kv.key, kv.value, kv.mod_revision))
        for resource, objs in grouped.items():
            self.caches[resource].reset(objs, revision)
        await self._advance(revision)

    async def _advance(self, revision: int) -> None:
        async with self._changed:
            self.revision = max(self.revision, revision)
            self._changed.notify_all()

    async def run(self) -> None:
        backoff = 0.05
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                    self.ready.set()
                # The cache holds every object's previous state, so etcd need not send it.
                async for ev in self.storage.watch(REGISTRY, start_revision=self.revision + 1, prev_kv=False):
                    backoff = 0.05
                    if ev.revision <= self._proved:
                        continue  # at or before a revision `_unchanged_until` proved: a net no-op
                    resource = ev.key[len(REGISTRY):].split("/", 1)[0]
                    cache = self.caches.get(resource)
                    if cache is not None:
                        cache.apply(ev)
                    if ev.revision > self.revision:
                        self.revision = ev.revision
                        async with self._changed:
                            self._changed.notify_all()
            except Compacted:
                log.warning("watch cache fell behind etcd compaction; relisting")
                need_list = True
            except Unavailable as err:
                log.warning("etcd watch interrupted (%s); resuming from revision %d", err, self.revision + 1)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def wait_for(self, revision: int, *, timeout: float = 3.0) -> None:
        """Wait until the cache has applied every event up to `revision`.

        Raises TimeoutError if it has not within `timeout` seconds."""
        if self.revision >= revision:
            return
        try:  # the usual case: the events are on their way
            await self._wait_until(revision, _EVENTS_EXPECTED_WITHIN)
            return
        except TimeoutError:
            pass
        if await self._unchanged_until(revision):
            # No await between the proof and this: no event may be applied in between.
            self._proved = max(self._proved, revision)
            self.revision = max(self.revision, revision)
            async with self._changed:
                self._changed.notify_all()
            return
        await self._wait_until(revision, timeout)

    async def _wait_until(self, revision: int, timeout: float) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.revision >= revision), timeout)

    async def _unchanged_until(self, revision: int) -> bool:
        """Whether nothing under /registry/ changed between the cache's revision and
        `revision`, so that the cache already is etcd's state at `revision`.

        etcd's revision counts every write, including those of another user of a shared
        etcd, which the watch on /registry/ never delivers: waiting for an event at such a
        revision would never end. One small range at `revision` proves that nothing of ours
        changed: no key under /registry/ was modified after the cache's revision, and as
        many keys exist as the cache holds (so none was deleted either). The only changes
        this cannot see are keys created and deleted again in between, which leave the state
        as it was; their events, if they arrive later, are skipped by `run()`.
        """
        known = self.revision
        held = sum(len(c.objects) for c in self.caches.values())
        try:
            total, modified = await self.storage.changed_since(REGISTRY, revision=revision, since=known)
        except StorageError:  # `revision` is in etcd's future, or compacted, or etcd is away
            return False
        return not modified and total == held and self.revision == known

    async def wait_fresh(self, *, timeout: float = 3.0) -> int:
        """Make the cache at least as fresh as etcd is now; returns that revision."""
        revision = await self.storage.current_revision()
        await self.wait_for(revision, timeout=timeout)
        return self.revision
