"""Informer: list, then watch, into an indexed read-only cache, telling handlers what changed.

    pods = Informer(client, Pod, indexers={"node": lambda p: [p.spec.node_name or ""]})
    pods.add_handler(on_add=lambda p: queue.add(object_key(p)), ...)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(pods.run())
        await pods.wait_synced()
        ...  pods.get("default/web-0"), pods.by_index("node", "n1")

How it works: `run()` lists every matching object (following `continue` pages), replaces
the cache with the list, then watches from the list's resourceVersion. The watch resumes
by itself across dropped connections and API server restarts (`api.watch`); when the
server answers 410 Gone (the revision was compacted), `run()` lists again and hands the
handlers the difference between the old cache and the new list. API and connection errors
are retried with backoff, forever; anything else is a bug and ends `run()` with it.

Consistency promise:

* **A real state, never a mix.** The cache only moves by whole events, applied in the
  server's order, or by a whole list. After each step it equals the set of matching objects
  at one revision of the server (`resource_version`). It lags the server by the watch
  delay, so a write based on it may be stale: writes carry `resourceVersion` and a 409
  means re-read and retry.
* **Every change is delivered, the latest state at least.** A handler sees each object's
  changes in order. Across a relist, intermediate versions are collapsed: the handler gets
  add/update/delete for the difference, a delete carrying the last state the cache knew
  (level-triggered code needs nothing more).
* **Handlers see the cache they are told about.** The cache is updated before handlers are
  called, so a handler (or a worker it wakes) reading the cache sees at least that change.
* **Objects are shared and read-only.** `get`, `list`, `by_index` and the handlers return
  the cached instances themselves, not copies. NEVER modify them: `copy_deep()` first.

Handlers are synchronous and cheap (they enqueue keys); they run in the informer's task,
in event order. An exception in a handler is logged and does not stop the informer or the
other handlers. A handler added after the initial sync is given a synthetic add for every
cached object. With `resync_period`, every cached object is handed to `on_update(obj, obj)`
that often, so controllers re-check what no event would have woken them for.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from api.base import KubeModel
from api.client import Client, object_meta
from api.errors import ApiError, Gone
from api.watch import Backoff, WatchEvent

__all__ = ["Indexer", "Informer", "namespace_index", "object_key", "split_key"]

log = logging.getLogger(__name__)

T = TypeVar("T", bound=KubeModel)

Indexer = Callable[[T], list[str]]
NAMESPACE_INDEX = "namespace"


def object_key(obj: KubeModel) -> str:
    """The cache key: `namespace/name` for namespaced objects, `name` for cluster-scoped ones."""
    meta = object_meta(obj)
    name = meta.name or ""
    return f"{meta.namespace}/{name}" if meta.namespace else name


def split_key(key: str) -> tuple[str | None, str]:
    """`"ns/name"` -> `("ns", "name")`; `"name"` -> `(None, "name")`."""
    namespace, sep, name = key.partition("/")
    return (namespace, name) if sep else (None, key)


def namespace_index(obj: KubeModel) -> list[str]:
    namespace = object_meta(obj).namespace
    return [namespace] if namespace else []


@dataclass(frozen=True, slots=True)
class _Handler(Generic[T]):
    on_add: Callable[[T], None] | None
    on_update: Callable[[T, T], None] | None
    on_delete: Callable[[T], None] | None


class Informer(Generic[T]):
    """A list+watch cache of one resource, with indexes and change handlers (see module doc)."""

    def __init__(
        self,
        client: Client,
        model: type[T],
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_period: float | None = None,
        indexers: dict[str, Callable[[T], list[str]]] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._client = client
        self._model = model
        self._namespace = namespace
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._resync_period = resync_period
        self._indexers: dict[str, Callable[[T], list[str]]] = {NAMESPACE_INDEX: namespace_index}
        self._indexers.update(indexers or {})
        self._backoff = backoff or Backoff(initial=0.1, cap=10.0)
        self._store: dict[str, T] = {}
        # index name -> index value -> keys
        self._indices: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}
        self._handlers: builtins.list[_Handler[T]] = []
        self._synced = asyncio.Event()
        self._running = False
        self.resource_version: str | None = None
        """The server revision the cache reflects (last list or event applied)."""
        self.name = model.__name__ + (f"[{namespace}]" if namespace else "")

    # ------------------------------------------------------------ handlers

    def add_handler(
        self,
        *,
        on_add: Callable[[T], None] | None = None,
        on_update: Callable[[T, T], None] | None = None,
        on_delete: Callable[[T], None] | None = None,
    ) -> None:
        handler = _Handler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if self._synced.is_set() and on_add is not None:
            for obj in builtins.list(self._store.values()):
                self._call(on_add, obj)

    def _call(self, fn: Callable[..., None], *args: T) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("informer %s: a handler failed", self.name)

    def _notify_add(self, obj: T) -> None:
        for h in self._handlers:
            if h.on_add is not None:
                self._call(h.on_add, obj)

    def _notify_update(self, old: T, new: T) -> None:
        for h in self._handlers:
            if h.on_update is not None:
                self._call(h.on_update, old, new)

    def _notify_delete(self, obj: T) -> None:
        for h in self._handlers:
            if h.on_delete is not None:
                self._call(h.on_delete, obj)

    # ---------------------------------------------------------------- reads

    def has_synced(self) -> bool:
        """True once the first list is in the cache (and ever after)."""
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Wait for the first list; raises TimeoutError after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            await self._synced.wait()

    def get(self, key: str) -> T | None:
        """The cached object under `key` (see `object_key`), or None. Read-only."""
        return self._store.get(key)

    def list(self, *, namespace: str | None = None) -> builtins.list[T]:
        """Cached objects, of one namespace or all. Read-only."""
        if namespace is None:
            return builtins.list(self._store.values())
        return self.by_index(NAMESPACE_INDEX, namespace)

    def by_index(self, index: str, value: str) -> builtins.list[T]:
        """Cached objects whose indexer `index` returned `value`. Read-only."""
        try:
            keys = self._indices[index].get(value, ())
        except KeyError:
            raise KeyError(f"informer {self.name} has no index {index!r}") from None
        return [self._store[k] for k in sorted(keys)]

    def keys(self) -> builtins.list[str]:
        return builtins.list(self._store)

    def __len__(self) -> int:
        return len(self._store)

    # ---------------------------------------------------------- cache writes

    def _index(self, key: str, obj: T) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in self._index_values(name, fn, obj):
                index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: T) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in self._index_values(name, fn, obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]

    def _index_values(self, name: str, fn: Callable[[T], builtins.list[str]], obj: T) -> Iterable[str]:
        try:
            return fn(obj)
        except Exception:
            log.exception("informer %s: indexer %r failed on %s", self.name, name, object_key(obj))
            return ()

    def _put(self, obj: T) -> T | None:
        key = object_key(obj)
        old = self._store.get(key)
        if old is not None:
            self._unindex(key, old)
        self._store[key] = obj
        self._index(key, obj)
        return old

    def _remove(self, key: str) -> T | None:
        old = self._store.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _replace(self, items: Iterable[T], resource_version: str) -> None:
        """Swap in a fresh list, then tell the handlers the difference."""
        old = self._store
        self._store = {object_key(obj): obj for obj in items}
        self._indices = {name: {} for name in self._indexers}
        for key, obj in self._store.items():
            self._index(key, obj)
        self.resource_version = resource_version
        self._synced.set()
        for key, obj in builtins.list(self._store.items()):
            before = old.get(key)
            if before is None:
                self._notify_add(obj)
            elif _rv(before) != _rv(obj):
                self._notify_update(before, obj)
        for key, obj in old.items():
            if key not in self._store:
                self._notify_delete(obj)

    def _apply(self, event: WatchEvent[T]) -> None:
        obj = event.object
        rv = object_meta(obj).resource_version
        if event.type == "BOOKMARK":
            self.resource_version = rv or self.resource_version
            return
        self.resource_version = rv or self.resource_version
        if event.type == "DELETED":
            if self._remove(object_key(obj)) is not None:
                self._notify_delete(obj)
            return
        old = self._put(obj)  # ADDED or MODIFIED: either may find the key absent or present
        if old is None:
            self._notify_add(obj)
        else:
            self._notify_update(old, obj)

    # ------------------------------------------------------------------ run

    async def run(self) -> None:
        """List and watch forever (until cancelled); see the module doc for the promises."""
        if self._running:
            raise RuntimeError(f"informer {self.name} is already running")
        self._running = True
        try:
            async with asyncio.TaskGroup() as tg:
                if self._resync_period:
                    tg.create_task(self._resync_loop(self._resync_period), name=f"{self.name}-resync")
                await self._list_and_watch()
        finally:
            self._running = False

    async def _list_and_watch(self) -> None:
        while True:
            try:
                page = await self._client.list_all(self._model, namespace=self._namespace,
                                                   label_selector=self._label_selector,
                                                   field_selector=self._field_selector)
            except (ApiError, ConnectionError, TimeoutError) as e:
                delay = self._backoff.next()
                log.warning("informer %s: list failed, retrying in %.2gs: %s", self.name, delay, e)
                await asyncio.sleep(delay)
                continue
            self._replace(page.items, page.resource_version)
            try:
                async with self._client.watch(self._model, namespace=self._namespace,
                                              label_selector=self._label_selector,
                                              field_selector=self._field_selector,
                                              resource_version=page.resource_version) as events:
                    async for event in events:
                        self._apply(event)
                        self._backoff.reset()
            except Gone as e:
                log.info("informer %s: watch expired at %s (%s); listing again", self.name,
                         self.resource_version, e)
            except (ApiError, ConnectionError, TimeoutError) as e:
                log.warning("informer %s: watch failed at %s: %s; listing again", self.name,
                            self.resource_version, e)
            # Gone right after a fresh list would loop hot; the backoff stays small while
            # watches deliver events (it is reset by each one).
            await asyncio.sleep(self._backoff.next())

    async def _resync_loop(self, period: float) -> None:
        await self._synced.wait()
        while True:
            await asyncio.sleep(period)
            for obj in builtins.list(self._store.values()):
                self._notify_update(obj, obj)


def _rv(obj: KubeModel) -> str | None:
    return object_meta(obj).resource_version
