"""Run N workers over a `WorkQueue`: the consuming half of every controller.

    informer handlers --add(key)--> WorkQueue --get()--> worker --sync(key)--> API server
                                        ^                   |
                                        +--add_rate_limited-+  (sync raised)

Each worker takes a key, awaits `sync(key)`, and then:

* on success: `forget(key)`, so the key's backoff starts from the base again;
* on an exception: logs it and `add_rate_limited(key)`: the key comes back after a
  per-key exponential delay. `sync` is level-triggered and idempotent, so running it
  again is always safe;
* in every case: `done(key)`, so a key re-added while it was syncing runs once more.

`run_workers` returns when the queue is shut down and every worker has finished the key
in hand. Cancelling it cancels the workers (their keys are still marked done). The
workers live in a TaskGroup owned by this call: nothing outlives it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from api.errors import ApiError
from api.workqueue import QueueShutDown, WorkQueue

__all__ = ["run_workers"]

log = logging.getLogger(__name__)


async def run_workers(
    queue: WorkQueue,
    sync: Callable[[str], Awaitable[None]],
    *,
    workers: int = 1,
    name: str,
    max_retries: int | None = None,
) -> None:
    """Process keys from `queue` with `workers` concurrent workers until it shuts down.

    `max_retries`: after that many consecutive failures of one key, log it and drop the key
    (it comes back with the next event or resync). `None`, the default, retries forever.
    """
    if workers < 1:
        raise ValueError("workers must be >= 1")
    async with asyncio.TaskGroup() as tg:
        for i in range(workers):
            tg.create_task(_worker(queue, sync, name=name, max_retries=max_retries),
                           name=f"{name}-worker-{i}")


async def _worker(queue: WorkQueue, sync: Callable[[str], Awaitable[None]], *, name: str,
                  max_retries: int | None) -> None:
    while True:
        try:
            key = await queue.get()
        except QueueShutDown:
            return
        try:
            await sync(key)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            retries = queue.num_requeues(key)
            if max_retries is not None and retries >= max_retries:
                log.error("%s: dropping %r after %d retries: %s", name, key, retries, e, exc_info=e)
                queue.forget(key)
            else:
                # API errors (a 409 most often) are expected and explain themselves; anything
                # else is a bug worth a traceback.
                log.warning("%s: sync %r failed (retry %d in %.3gs): %s", name, key, retries + 1,
                            queue.backoff(key), e, exc_info=None if isinstance(e, ApiError) else e)
                queue.add_rate_limited(key)
        else:
            queue.forget(key)
        finally:
            queue.done(key)
