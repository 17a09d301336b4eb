"""The scheduling queue: which pending pod to try next, and when to try a failed one again.

Every pending pod is in exactly one place:

    active         ready to be tried; ordered by priority (higher first), then by the
                   time it (re)entered the queue, so equal pods go first-in first-out;
    backoff        failed recently; waits min(initial * 2**(attempts-1), max) seconds;
    unschedulable  fits no node; stays until something changes in the cluster that
                   could make it fit (`move_all`: a node added or changed, a pod
                   deleted), or `unschedulable_timeout` passes, then goes to backoff
                   (if its backoff has not elapsed) or active;
    in flight      popped and being scheduled or bound; `done` removes it,
                   `requeue_*` puts it back.

A cluster event that arrives while a pod is in flight must not be missed: if the
attempt then fails as unschedulable, the pod goes to backoff, not unschedulable
(each pop gets a cycle number; `move_all` remembers the cycle it happened in).

A pod is keyed by namespace/name; adding a key already present replaces the stored
pod object and never duplicates the key. Time comes from the `clock` given to the
constructor, so the transitions are tested with a fake clock and no sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from api.core import Pod
from scheduler.nodeinfo import pod_key

__all__ = ["Location", "QueueClosed", "QueuedPod", "SchedulingQueue"]

_TIMEOUT_SCAN_INTERVAL = 1.0


class QueueClosed(Exception):
    """`pop` on a queue that was shut down."""


class Location(Enum):
    ACTIVE = "active"
    BACKOFF = "backoff"
    UNSCHEDULABLE = "unschedulable"
    IN_FLIGHT = "in-flight"


@dataclass(slots=True)
class QueuedPod:
    key: str
    pod: Pod
    location: Location = Location.ACTIVE
    attempts: int = 0
    timestamp: float = 0.0  # when it last entered active (FIFO among equal priority)
    backoff_until: float = 0.0
    unschedulable_since: float = 0.0
    cycle: int = 0  # scheduling cycle of the last pop
    seq: int = field(default=0)  # invalidates stale heap entries

    @property
    def priority(self) -> int:
        return self.pod.spec.priority or 0


class SchedulingQueue:
    def __init__(
        self,
        *,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        unschedulable_timeout: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.unschedulable_timeout = unschedulable_timeout
        self._clock = clock
        self._pods: dict[str, QueuedPod] = {}
        self._active: list[tuple[int, float, int, str]] = []  # (-priority, timestamp, seq, key)
        self._backoff: list[tuple[float, int, str]] = []  # (backoff_until, seq, key)
        self._seq = 0
        self._cycle = 0
        self._move_request_cycle = -1
        self._closed = False
        self._last_timeout_scan = float("-inf")
        self._wakeup = asyncio.Event()

    # ------------------------------------------------------------ informer side

    def add(self, pod: Pod) -> None:
        """A pending pod was added or changed."""
        key = pod_key(pod)
        qp = self._pods.get(key)
        if qp is None:
            self._pods[key] = qp = QueuedPod(key, pod)
            self._to_active(qp)
            return
        changed = _spec_changed(qp.pod, pod)
        qp.pod = pod
        if qp.location is Location.UNSCHEDULABLE and changed:
            # The user edited the pod (e.g. lowered its requests): worth a new try.
            self._to_backoff_or_active(qp)

    def delete(self, key: str) -> None:
        qp = self._pods.pop(key, None)
        if qp is not None:
            qp.seq = -1  # its heap entries are now stale

    def move_all(self) -> None:
        """Something changed that may make unschedulable pods fit: give them another try."""
        self._move_request_cycle = self._cycle
        for qp in list(self._pods.values()):
            if qp.location is Location.UNSCHEDULABLE:
                self._to_backoff_or_active(qp)

    # ------------------------------------------------------------ scheduler side

    def pop_nowait(self) -> QueuedPod | None:
        """The next active pod (after promoting due ones), now in flight; None if none."""
        self.flush()
        while self._active:
            _, _, seq, key = heapq.heappop(self._active)
            qp = self._pods.get(key)
            if qp is None or qp.seq != seq or qp.location is not Location.ACTIVE:
                continue
            self._cycle += 1
            qp.cycle = self._cycle
            qp.location = Location.IN_FLIGHT
            return qp
        return None

    async def pop(self) -> QueuedPod:
        """Wait for the next pod to try. Raises QueueClosed after `close()`."""
        while True:
            if self._closed:
                raise QueueClosed
            qp = self.pop_nowait()
            if qp is not None:
                return qp
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), self._next_due())
            except TimeoutError:
                pass

    def done(self, key: str) -> None:
        """The pod was bound (or needs no scheduling): forget it."""
        qp = self._pods.get(key)
        if qp is not None and qp.location is Location.IN_FLIGHT:
            del self._pods[key]

    def requeue_unschedulable(self, qp: QueuedPod) -> None:
        """The attempt found no node: wait for a cluster change (or back off if one came)."""
        if self._pods.get(qp.key) is not qp:
            return  # deleted while in flight
        qp.attempts += 1
        now = self._clock()
        qp.backoff_until = now + self.backoff_for(qp.attempts)
        if self._move_request_cycle >= qp.cycle:
            self._to_backoff_or_active(qp)
        else:
            qp.location = Location.UNSCHEDULABLE
            qp.unschedulable_since = now

    def requeue_backoff(self, qp: QueuedPod) -> None:
        """The attempt failed for another reason (an API error): retry after backoff."""
        if self._pods.get(qp.key) is not qp:
            return
        qp.attempts += 1
        qp.backoff_until = self._clock() + self.backoff_for(qp.attempts)
        self._to_backoff_or_active(qp)

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    # ------------------------------------------------------------ time

    def backoff_for(self, attempts: int) -> float:
        if attempts <= 0:
            return 0.0
        return min(self.initial_backoff * 2 ** min(attempts - 1, 62), self.max_backoff)

    def flush(self) -> None:
        """Promote pods whose backoff elapsed, and unschedulable pods that waited too long."""
        now = self._clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, seq, key = heapq.heappop(self._backoff)
            qp = self._pods.get(key)
            if qp is not None and qp.seq == seq and qp.location is Location.BACKOFF:
                self._to_active(qp)
        # Scanning every pod on every pop would make a pop O(pending); the timeout is
        # minutes long, so checking it once a second is precise enough.
        if now - self._last_timeout_scan < _TIMEOUT_SCAN_INTERVAL:
            return
        self._last_timeout_scan = now
        cutoff = now - self.unschedulable_timeout
        for qp in list(self._pods.values()):
            if qp.location is Location.UNSCHEDULABLE and qp.unschedulable_since <= cutoff:
                self._to_backoff_or_active(qp)

    def _next_due(self) -> float:
        """Seconds until the queue might have work without being told (a backoff ends)."""
        now = self._clock()
        due = min(self.unschedulable_timeout, _TIMEOUT_SCAN_INTERVAL * 5)
        if self._backoff:
            due = min(due, self._backoff[0][0] - now)
        return max(due, 0.001)

    # ------------------------------------------------------------ reads

    def location(self, key: str) -> Location | None:
        qp = self._pods.get(key)
        return qp.location if qp else None

    def __len__(self) -> int:
        return len(self._pods)

    def counts(self) -> dict[Location, int]:
        out = dict.fromkeys(Location, 0)
        for qp in self._pods.values():
            out[qp.location] += 1
        return out

    # ------------------------------------------------------------ transitions

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _to_active(self, qp: QueuedPod) -> None:
        qp.location = Location.ACTIVE
        qp.seq = self._next_seq()
        qp.timestamp = self._clock()
        heapq.heappush(self._active, (-qp.priority, qp.timestamp, qp.seq, qp.key))
        self._wakeup.set()

    def _to_backoff_or_active(self, qp: QueuedPod) -> None:
        if qp.backoff_until > self._clock():
            qp.location = Location.BACKOFF
            qp.seq = self._next_seq()
            heapq.heappush(self._backoff, (qp.backoff_until, qp.seq, qp.key))
            self._wakeup.set()  # pop() must recompute how long to sleep
        else:
            self._to_active(qp)


def _spec_changed(old: Pod, new: Pod) -> bool:
    return old.spec != new.spec or old.metadata.labels != new.metadata.labels
