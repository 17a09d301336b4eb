"""A work queue of object keys with client-go semantics, for one asyncio event loop.

Controllers put keys (`"namespace/name"`) here from informer handlers and take them out
in workers. The queue guarantees, for every key:

* **Deduplication.** A key added while it is already waiting is queued once: ten
  updates to one pod before a worker gets to it cause one sync, not ten.
* **Exclusivity.** A key handed out by `get()` is not handed out again until `done(key)`.
  Two workers never sync the same key at the same time.
* **No lost wake-up.** A key added while it is being processed is remembered ("dirty")
  and queued again when `done(key)` is called, so the newest state is always synced
  after the change that triggered it.
* **Fair order.** Waiting keys come out first-in, first-out.

Retries: `add_rate_limited(key)` re-adds the key after a per-key exponential delay
(`base_delay * 2**failures`, capped at `max_delay`; defaults 5 ms and 1000 s as in
client-go); `forget(key)` resets the key's failure count once a sync succeeds.
`add_after(key, delay)` schedules a key; if the key is already scheduled, the earlier
time wins, so a key has at most one pending timer.

Shutdown: after `shut_down()`, `add*` are ignored, pending timers are cancelled and
`get()` raises `QueueShutDown` (also in workers already waiting), so workers stop after
finishing the key in hand.

Not thread-safe: every method must be called from the loop that owns the queue
(handlers of an informer run there). Timers are `call_later` handles owned by the queue,
never free-running tasks.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["QueueShutDown", "WorkQueue"]


class QueueShutDown(Exception):
    """`WorkQueue.get()` after `shut_down()`: the worker should return."""


class WorkQueue:
    def __init__(self, *, name: str = "", base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError("need 0 < base_delay <= max_delay")
        self.name = name
        self._base_delay = base_delay
        self._max_delay = max_delay
        # Invariant: `_queue` holds exactly the keys of `_dirty` that are not in `_processing`,
        # each once. A dirty key that is processing is queued again by done().
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        # Delayed adds: key -> (loop time when due, timer handle). At most one per key.
        self._delayed: dict[str, tuple[float, asyncio.TimerHandle]] = {}
        self._failures: dict[str, int] = {}
        self._shutting_down = False

    # ------------------------------------------------------------------ adding

    def add(self, key: str) -> None:
        """Queue `key` unless it is already waiting; if it is processing, queue it after done()."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._wake_one()

    def add_after(self, key: str, delay: float) -> None:
        """Queue `key` after `delay` seconds (at once if `delay <= 0`); the earliest schedule wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        pending = self._delayed.get(key)
        if pending is not None:
            if pending[0] <= due:
                return
            pending[1].cancel()
        self._delayed[key] = (due, loop.call_at(due, self._fire, key))

    def add_rate_limited(self, key: str) -> None:
        """Queue `key` again after its backoff, and count one more failure for it."""
        self.add_after(key, self.backoff(key))
        self._failures[key] = self._failures.get(key, 0) + 1

    def backoff(self, key: str) -> float:
        """The delay the next `add_rate_limited(key)` will use."""
        failures = self._failures.get(key, 0)
        # 2**failures overflows a float long after the cap is reached: clamp the exponent.
        return min(self._base_delay * 2 ** min(failures, 64), self._max_delay)

    def forget(self, key: str) -> None:
        """Reset the failure count of `key` (call after a successful sync)."""
        self._failures.pop(key, None)

    def num_requeues(self, key: str) -> int:
        return self._failures.get(key, 0)

    def _fire(self, key: str) -> None:
        self._delayed.pop(key, None)
        self.add(key)

    # ---------------------------------------------------------------- taking

    async def get(self) -> str:
        """The next key; the caller owns it until `done(key)`. Raises `QueueShutDown`."""
        while not self._queue:
            if self._shutting_down:
                raise QueueShutDown(self.name)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif self._queue:
                    # We were woken for a key but will not take it: pass the wake-up on.
                    self._wake_one()
                raise
        if self._shutting_down:
            raise QueueShutDown(self.name)
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: str) -> None:
        """Release `key`; if it was added while processing, it is queued again now."""
        self._processing.discard(key)
        if key in self._dirty and not self._shutting_down:
            self._queue.append(key)
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    # -------------------------------------------------------------- lifecycle

    def shut_down(self) -> None:
        """Stop handing out keys: waiting and future `get()` calls raise `QueueShutDown`."""
        self._shutting_down = True
        for _, handle in self._delayed.values():
            handle.cancel()
        self._delayed.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        """Keys waiting to be handed out (not those processing or scheduled for later)."""
        return len(self._queue)

    def __repr__(self) -> str:
        return (f"<WorkQueue {self.name!r} waiting={len(self._queue)} processing={len(self._processing)}"
                f" delayed={len(self._delayed)}>")
