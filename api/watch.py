"""Watch streams that survive the network: resume from the last resourceVersion seen.

    async with client.watch(Pod, namespace="default", resource_version=rv) as events:
        async for event in events:          # WatchEvent(type, object)
            ...

A `Watch` reads the server's newline-delimited JSON events and yields `WatchEvent`s.
It asks for BOOKMARKs (`allowWatchBookmarks=true`) and remembers the resourceVersion of
every event it yields. Its promise:

* **No gap, no repeat.** When the stream ends (server-side timeout) or the connection
  breaks (the API server restarts), the watch reconnects with `resourceVersion=` the last
  one it yielded, so the caller sees every change once, in order. While the server is away
  it retries with capped exponential backoff, for as long as it takes.
* **Gone means relist.** If the server no longer has that revision (etcd compacted it) it
  answers HTTP 410 or an ERROR event carrying a 410 Status; the watch raises
  `api.errors.Gone` and ends. The caller must list again and watch from the list's
  resourceVersion (the informer does this).
* Other refusals (400, 403, 404, ...) raise their typed `ApiError`; server errors (5xx,
  429) are retried like a dropped connection.
* A BOOKMARK's object only has `metadata.resourceVersion` (it is built without
  validation); ADDED/MODIFIED/DELETED carry the full object.
* Without a starting `resource_version`, the server decides where to start (Kubernetes:
  the current state as ADDED events, then changes); until the first event arrives, a
  reconnect starts the same way again, so the caller may see those ADDEDs twice.

A connection silent for `read_timeout` seconds (default 120; servers send BOOKMARKs far
more often) is taken for dead and replaced, which catches peers that vanished without
closing TCP.

`timeout_seconds` bounds the whole watch: after that long the iterator ends (the server is
asked to end each connection by then). Without it the watch runs until closed, and each
connection asks the server to end it after 5-10 minutes, so that dead peers that TCP did
not notice are replaced.

A `Watch` owns at most one HTTP response at a time; `aclose()` (or leaving `async with`)
releases it. Iterate it from a single task.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, Literal, Protocol, Self, TypeVar, cast

import aiohttp

from api import jsoncodec
from api.base import KubeModel
from api.errors import ApiError, Gone, InternalError, ServiceUnavailable, TooManyRequests
from api.meta import ObjectMeta

__all__ = ["Backoff", "EventType", "Watch", "WatchEvent"]

log = logging.getLogger(__name__)

T = TypeVar("T", bound=KubeModel)

EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
_EVENT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK"})
# Errors after which reconnecting is the right answer (the server is restarting or overloaded).
_RETRYABLE: tuple[type[BaseException], ...] = (
    ConnectionError, TimeoutError, aiohttp.ClientPayloadError, InternalError, ServiceUnavailable,
    TooManyRequests,
)
# Per-connection server timeout when the caller sets none: random, so that many watchers
# started together do not all reconnect at the same moment.
_MIN_CONNECTION_SECONDS = 300


@dataclass(frozen=True, slots=True)
class WatchEvent(Generic[T]):
    type: EventType
    object: T


class Backoff:
    """Capped exponential backoff with jitter: `next()` gives the delay to sleep."""

    def __init__(self, *, initial: float = 0.05, cap: float = 2.0, factor: float = 2.0,
                 jitter: float = 0.2) -> None:
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self._current = initial

    def next(self) -> float:
        delay = self._current
        self._current = min(self._current * self.factor, self.cap)
        return delay * (1 + random.uniform(0, self.jitter))

    def reset(self) -> None:
        self._current = self.initial


class _Transport(Protocol):
    """What a Watch needs of `api.client.Client`."""

    server: str

    @property
    def closed(self) -> bool: ...

    def stream(self, method: str, path: str, *, params: dict[str, str | int | bool | None] | None = None,
               read_timeout: float | None = None) -> AbstractAsyncContextManager[aiohttp.ClientResponse]: ...


class Watch(Generic[T]):
    """An async iterator of `WatchEvent[T]` that resumes across disconnects (see module doc)."""

    def __init__(
        self,
        transport: _Transport,
        model: type[T],
        *,
        path: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
        backoff: Backoff | None = None,
        read_timeout: float | None = 120.0,
    ) -> None:
        self._transport = transport
        self._read_timeout = read_timeout
        self._model = model
        self._path = path
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._timeout_seconds = timeout_seconds
        self._backoff = backoff or Backoff()
        self.resource_version = resource_version
        """The resourceVersion of the last event yielded (where a reconnect resumes)."""
        self._events = self._run()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> WatchEvent[T]:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        await self._events.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def _run(self) -> AsyncGenerator[WatchEvent[T], None]:
        loop = asyncio.get_running_loop()
        deadline = None if self._timeout_seconds is None else loop.time() + self._timeout_seconds
        failures = 0
        while True:
            if self._transport.closed:
                raise ConnectionError(f"watch {self._path}: the client is closed")
            if deadline is None:
                per_connection = random.randint(_MIN_CONNECTION_SECONDS, 2 * _MIN_CONNECTION_SECONDS)
            else:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                per_connection = max(1, round(remaining))
            params: dict[str, str | int | bool | None] = {
                "watch": True, "allowWatchBookmarks": True, "resourceVersion": self.resource_version,
                "labelSelector": self._label_selector, "fieldSelector": self._field_selector,
                "timeoutSeconds": per_connection,
            }
            received = 0
            try:
                async with self._transport.stream("GET", self._path, params=params,
                                                  read_timeout=self._read_timeout) as resp:
                    if failures:
                        log.info("watch %s: reconnected to %s at resourceVersion %s", self._path,
                                 self._transport.server, self.resource_version)
                        failures = 0
                    async for line in _lines(resp):
                        event = self._decode(line)
                        if event is None:
                            continue
                        received += 1
                        if received == 1:
                            self._backoff.reset()  # a working connection: the next failure is a new one
                        self.resource_version = event.object_rv or self.resource_version
                        yield WatchEvent(event.type, event.object)
                        if deadline is not None and loop.time() >= deadline:
                            return
            except Gone:
                raise
            except _RETRYABLE as e:
                if self._transport.closed:
                    raise ConnectionError(f"watch {self._path}: the client is closed") from e
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(level, "watch %s: %s; resuming from resourceVersion %s", self._path,
                        e or type(e).__name__, self.resource_version)
                await asyncio.sleep(self._backoff.next())
                continue
            # The server ended the stream (its timeout, or it is shutting down). Resume at once
            # if it was a useful stream; if it ended empty, back off so that a server closing
            # every stream at once is not hammered.
            if deadline is not None and loop.time() >= deadline:
                return
            if not received:
                await asyncio.sleep(self._backoff.next())

    def _decode(self, line: bytes) -> _Decoded[T] | None:
        try:
            raw = jsoncodec.loads(line)
        except ValueError:
            log.warning("watch %s: dropping a line that is not JSON: %.200r", self._path, line)
            return None
        kind = raw.get("type")
        obj = raw.get("object") or {}
        if kind == "ERROR":
            code = int(obj.get("code") or 500)
            err = ApiError.from_status(obj, code)
            if code == 410 and not isinstance(err, Gone):
                err = Gone(err.message)
            raise err
        if kind not in _EVENT_TYPES:
            log.warning("watch %s: ignoring an event of unknown type %r", self._path, kind)
            return None
        meta = obj.get("metadata") or {}
        if kind == "BOOKMARK":
            # Only the resourceVersion means anything; the rest of the object may be absent.
            model_obj = cast(T, self._model.model_construct(metadata=ObjectMeta.from_dict(meta)))
        else:
            model_obj = self._model.from_dict(obj)
        return _Decoded(kind, model_obj, meta.get("resourceVersion"))


@dataclass(slots=True)
class _Decoded(Generic[T]):
    type: EventType
    object: T
    object_rv: str | None


async def _lines(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """Newline-delimited chunks of the body, however long (aiohttp's readline caps a line)."""
    buf = bytearray()
    async for chunk in resp.content.iter_any():
        buf.extend(chunk)
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            line = bytes(buf[start:end]).strip()
            if line:
                yield line
            start = end + 1
        del buf[:start]
    tail = bytes(buf).strip()
    if tail:
        yield tail
