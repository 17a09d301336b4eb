"""`run_scheduler`: the scheduler as `kubelite scheduler` and `kubelite server` run it.

With `leader_elect`, the scheduler only schedules while it holds the
`kube-system/kube-scheduler` Lease, so two schedulers can run for availability
without ever binding the same pod twice. Losing the lease stops the loop and
`run_scheduler` raises LeadershipLost: the process exits, as kube-scheduler does, and
its supervisor starts a fresh one (with fresh caches) that queues up as a candidate.
Setting `stop` releases the lease at once, so a standby takes over without waiting
for it to expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from api.client import Client
from api.core import Namespace
from api.errors import AlreadyExists
from api.events import EventRecorder
from api.leaderelection import LeaderElector
from api.meta import ObjectMeta
from scheduler.scheduler import DEFAULT_SCHEDULER_NAME, EventSink, Scheduler

__all__ = ["LEASE_NAME", "LEASE_NAMESPACE", "LeadershipLost", "run_scheduler"]

LEASE_NAME = "kube-scheduler"
LEASE_NAMESPACE = "kube-system"


class LeadershipLost(RuntimeError):
    """Another scheduler took the Lease: this one stopped scheduling (the process should exit)."""


async def run_scheduler(
    client: Client,
    *,
    stop: asyncio.Event | None = None,
    leader_elect: bool = False,
    identity: str | None = None,
    recorder: EventSink | None = None,
    scheduler_name: str = DEFAULT_SCHEDULER_NAME,
    lease_duration: float = 15.0,
    renew_deadline: float = 10.0,
    retry_period: float = 2.0,
    **options: Any,
) -> None:
    """Schedule pods until `stop` is set. `options` go to `Scheduler` (bind_concurrency, ...).

    With `leader_elect`, waits for the Lease first; raises LeadershipLost if it is lost
    before `stop` is set (like kube-scheduler, which exits then).
    """
    stop = stop or asyncio.Event()
    if recorder is not None:
        sink = recorder
        own: EventRecorder | None = None
    else:
        own = EventRecorder(client, component=scheduler_name, host=socket.gethostname())
        sink = own
    try:
        async def lead() -> None:
            scheduler = Scheduler(client, recorder=sink, scheduler_name=scheduler_name, **options)
            await scheduler.run(stop)

        if not leader_elect:
            await lead()
            return
        with contextlib.suppress(AlreadyExists):
            await client.create(Namespace(metadata=ObjectMeta(name=LEASE_NAMESPACE)))
        elector = LeaderElector(
            client,
            name=LEASE_NAME,
            namespace=LEASE_NAMESPACE,
            identity=identity or f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:8]}",
            lease_duration=lease_duration,
            renew_deadline=renew_deadline,
            retry_period=retry_period,
        )
        await _elect(elector, lead, stop)
    finally:
        if own is not None:
            await own.close()


async def _elect(elector: LeaderElector, lead: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    election = asyncio.create_task(elector.run(lead), name="scheduler-leader-election")
    waiter = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({election, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if election in done:
            election.result()  # re-raise what ended the election
            if not stop.is_set():
                raise LeadershipLost(f"lost the lease {LEASE_NAMESPACE}/{LEASE_NAME} to {elector.leader}")
            return
        if elector.is_leader():
            # The scheduler sees `stop` too and returns; the elector then releases the Lease.
            await asyncio.wait({election}, timeout=15)
    finally:
        for task in (election, waiter):
            task.cancel()
        await asyncio.gather(election, waiter, return_exceptions=True)
