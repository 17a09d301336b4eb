"""`run_scheduler`: the scheduler as `kubelite scheduler` and `kubelite server` run it.

With `leader_elect`, the scheduler only schedules while it holds the
`kube-system/kube-scheduler` Lease, so two schedulers can run for availability
without ever binding the same pod twice; losing the lease stops the loop (a fresh
Scheduler, with fresh caches, starts if the lease is won again).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from typing import Any

from api.client import Client
from api.events import EventRecorder
from scheduler.scheduler import DEFAULT_SCHEDULER_NAME, EventSink, Scheduler

__all__ = ["LEASE_NAME", "LEASE_NAMESPACE", "run_scheduler"]

LEASE_NAME = "kube-scheduler"
LEASE_NAMESPACE = "kube-system"


async def run_scheduler(
    client: Client,
    *,
    stop: asyncio.Event | None = None,
    leader_elect: bool = False,
    identity: str | None = None,
    recorder: EventSink | None = None,
    scheduler_name: str = DEFAULT_SCHEDULER_NAME,
    **options: Any,
) -> None:
    """Schedule pods until `stop` is set. `options` go to `Scheduler` (bind_concurrency, ...)."""
    stop = stop or asyncio.Event()
    if recorder is not None:
        await _run(client, stop, leader_elect, identity, recorder, scheduler_name, options)
        return
    async with EventRecorder(client, component=scheduler_name, host=socket.gethostname()) as own:
        await _run(client, stop, leader_elect, identity, own, scheduler_name, options)


async def _run(client: Client, stop: asyncio.Event, leader_elect: bool, identity: str | None, recorder: EventSink,
               scheduler_name: str, options: dict[str, Any]) -> None:
    async def lead() -> None:
        scheduler = Scheduler(client, recorder=recorder, scheduler_name=scheduler_name, **options)
        await scheduler.run(stop)

    if not leader_elect:
        await lead()
        return

    from api.leaderelection import LeaderElector

    elector = LeaderElector(
        client,
        name=LEASE_NAME,
        namespace=LEASE_NAMESPACE,
        identity=identity or f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:8]}",
    )
    election = asyncio.create_task(elector.run(lead), name="scheduler-leader-election")
    waiter = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({election, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if election in done:
            election.result()  # re-raise what ended the election
    finally:
        for task in (election, waiter):
            task.cancel()
        await asyncio.gather(election, waiter, return_exceptions=True)
