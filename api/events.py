"""EventRecorder: fire-and-forget core/v1 Events, aggregated as Kubernetes does.

    recorder = EventRecorder(client, component="scheduler", host="node-1")
    recorder.event(pod, "Normal", "Scheduled", "Successfully assigned default/web to n1")
    ...
    await recorder.close()          # or `async with EventRecorder(...) as recorder:`

Promises:

* `event()` never blocks and never raises into its caller: recording is a side channel,
  and a controller must not fail because the API server refused an Event. Failures are
  logged.
* **Aggregation.** Events with the same involved object, type, reason and message are
  one Event object on the server: a repeat bumps its `count` and `lastTimestamp` (a merge
  patch) instead of creating another object, as Kubernetes' recorder does. Repeats that
  arrive while the first is still waiting to be sent are merged before sending. If the
  server no longer has the Event (expired or deleted), a new one is created.
* **Bounded.** At most `max_pending` distinct events wait to be sent, and at most
  `cache_size` sent events are remembered for aggregation (least recently used first out).
  Beyond that, new events are dropped and counted in `dropped`, so a dead API server
  costs a bounded amount of memory.
* Event names are `<object name>.<hex nanoseconds>`, unique per recorder. An Event about a
  cluster-scoped object (a Node) lives in the `default` namespace, as in Kubernetes.

Lifetime: one sender task, started by the first `event()` in the running loop and owned by
the recorder; `close()` flushes (bounded) and cancels it. `flush()` waits until everything
recorded so far has been sent or given up on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Literal, Self

from api.base import KubeModel, now
from api.client import Client, object_meta
from api.core import Event, EventSource, ObjectReference
from api.errors import AlreadyExists, ApiError, NotFound
from api.meta import ObjectMeta
from api.watch import Backoff

__all__ = ["EventRecorder", "EventType"]

log = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]

# (kind, namespace, name, uid, type, reason, message): what makes two events "the same".
_Key = tuple[str, str, str, str, str, str, str]


@dataclass(slots=True)
class _Pending:
    ref: ObjectReference
    namespace: str
    type: str
    reason: str
    message: str
    count: int
    first: datetime
    last: datetime


@dataclass(slots=True)
class _Sent:
    name: str
    namespace: str
    count: int


class EventRecorder:
    def __init__(self, client: Client, *, component: str, host: str | None = None, max_pending: int = 1000,
                 cache_size: int = 4096, send_attempts: int = 3) -> None:
        self._client = client
        self.component = component
        self.host = host
        self._max_pending = max_pending
        self._cache_size = cache_size
        self._send_attempts = send_attempts
        self._pending: OrderedDict[_Key, _Pending] = OrderedDict()
        self._sent: OrderedDict[_Key, _Sent] = OrderedDict()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._last_suffix = 0
        self.dropped = 0
        """Events not recorded because the queue was full, the recorder closed, or sending failed."""

    # --------------------------------------------------------------- recording

    def event(self, obj: KubeModel, type_: EventType, reason: str, message: str) -> None:
        """Record an event about `obj`; returns at once and never raises."""
        try:
            self._record(obj, type_, reason, message)
        except Exception:
            self.dropped += 1
            log.exception("event %s %s dropped", reason, message)

    def _record(self, obj: KubeModel, type_: str, reason: str, message: str) -> None:
        if self._closed:
            self.dropped += 1
            log.debug("event recorder closed: dropping %s %s", reason, message)
            return
        loop = asyncio.get_running_loop()  # raises (and the event is dropped) outside a loop
        meta = object_meta(obj)
        kind = str(getattr(obj, "kind", "") or type(obj).__name__)
        ref = ObjectReference(api_version=getattr(obj, "api_version", None), kind=kind, name=meta.name,
                              namespace=meta.namespace, uid=meta.uid, resource_version=meta.resource_version)
        key: _Key = (kind, meta.namespace or "", meta.name or "", meta.uid or "", type_, reason, message)
        stamp = now()
        pending = self._pending.get(key)
        if pending is not None:
            pending.count += 1
            pending.last = stamp
            pending.ref = ref  # the newest resourceVersion
            return
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("event recorder %s: %d events waiting, dropped %d so far (is the API server "
                            "reachable?)", self.component, len(self._pending), self.dropped)
            return
        self._pending[key] = _Pending(ref=ref, namespace=meta.namespace or "default", type=type_, reason=reason,
                                      message=message, count=1, first=stamp, last=stamp)
        self._idle.clear()
        self._wakeup.set()
        if self._task is None:
            # Owned by the recorder, cancelled by close(): the one background task it has.
            self._task = loop.create_task(self._run(), name=f"events-{self.component}")

    # ----------------------------------------------------------------- sending

    async def _run(self) -> None:
        failures = 0
        while True:
            if not self._pending:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            key, pending = self._pending.popitem(last=False)
            try:
                await self._send(key, pending)
            except asyncio.CancelledError:
                self.dropped += 1  # closed while this one was in flight
                raise
            except Exception as e:
                self.dropped += 1
                failures += 1
                # One warning per outage, not one per event: a dead server would flood the log.
                log.log(logging.WARNING if failures == 1 else logging.DEBUG,
                        "event recorder %s: could not record %s %s on %s/%s: %s", self.component,
                        pending.reason, pending.message, pending.ref.kind, pending.ref.name, e)
            else:
                if failures:
                    log.info("event recorder %s: recording again after %d failed events", self.component,
                             failures)
                failures = 0

    async def _send(self, key: _Key, pending: _Pending) -> None:
        backoff = Backoff(initial=0.1, cap=1.0)
        for attempt in range(1, self._send_attempts + 1):
            try:
                await self._send_once(key, pending)
                return
            except (ConnectionError, TimeoutError, ApiError) as e:
                retryable = not isinstance(e, ApiError) or e.code >= 500 or e.code == 429
                if not retryable or attempt == self._send_attempts:
                    raise
                await asyncio.sleep(backoff.next())

    async def _send_once(self, key: _Key, pending: _Pending) -> None:
        sent = self._sent.get(key)
        if sent is not None:
            count = sent.count + pending.count
            patch = {"count": count, "lastTimestamp": _time(pending.last)}
            try:
                await self._client.patch(Event, sent.name, patch, namespace=sent.namespace)
            except NotFound:
                del self._sent[key]
            else:
                sent.count = count
                self._sent.move_to_end(key)
                return
        for _ in range(3):
            name = self._event_name(pending.ref.name or "unknown")
            event = Event(
                metadata=ObjectMeta(name=name, namespace=pending.namespace),
                involved_object=pending.ref,
                reason=pending.reason,
                message=pending.message,
                type=pending.type,
                source=EventSource(component=self.component, host=self.host),
                first_timestamp=pending.first,
                last_timestamp=pending.last,
                count=pending.count,
                reporting_component=self.component,
                reporting_instance=self.host or "",
            )
            try:
                await self._client.create(event)
            except AlreadyExists:
                continue
            self._sent[key] = _Sent(name=name, namespace=pending.namespace, count=pending.count)
            while len(self._sent) > self._cache_size:
                self._sent.popitem(last=False)
            return
        raise AlreadyExists(f"could not find a free name for an event about {pending.ref.name}")

    def _event_name(self, object_name: str) -> str:
        self._last_suffix = max(self._last_suffix + 1, time.time_ns())
        return f"{object_name}.{self._last_suffix:x}"

    # --------------------------------------------------------------- lifetime

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every event recorded so far is sent (or given up on)."""
        async with asyncio.timeout(timeout):
            await self._idle.wait()

    async def close(self, *, flush_timeout: float = 5.0) -> None:
        """Send what is pending (for at most `flush_timeout` s), then stop; later events are dropped."""
        self._closed = True
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await self.flush(flush_timeout)
        self.dropped += len(self._pending)
        self._pending.clear()
        self._task.cancel()
        await asyncio.wait([self._task])  # unlike `await task`, does not swallow our own cancellation
        self._task = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
