"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

    elector = LeaderElector(client, name="kube-scheduler", identity=f"{host}_{uuid}")
    await elector.run(scheduler.run)     # returns when leadership is lost

One Lease object names the leader (`spec.holderIdentity`) and when it last renewed.
Candidates poll it every `retry_period` (with jitter); the holder renews it every
`retry_period`. Every write is an update carrying the Lease's resourceVersion, so of two
candidates racing for an expired lease exactly one wins and the other gets 409 Conflict.

Timing (defaults as client-go: lease 15 s, renew deadline 10 s, retry 2 s) and why it is safe:

* A candidate judges expiry on *its own* monotonic clock: a lease is expired once its
  record (holder, renewTime, ...) has not changed for `leaseDurationSeconds` since this
  candidate first saw it. No clocks are compared across machines.
* The leader gives up when it has not renewed for `renew_deadline`, counted from its last
  successful renewal, or at once when the Lease shows another holder. It then cancels the
  leading coroutine and waits for it to finish before `run()` returns. Because
  `renew_deadline < lease_duration`, the old leader stops before any candidate can see the
  lease as expired (give or take the scheduling delay of the cancellation).
* When `run()` ends on its own terms (the leading coroutine returned or raised, or `run()`
  was cancelled) and `release_on_cancel` is set, the leader clears `holderIdentity` so a
  successor need not wait for expiry.

`run()` returns after losing leadership (components normally exit then, as Kubernetes'
do), returns when `on_started_leading` returns, and raises what it raises. A LeaderElector
runs once at a time; its tasks (the leading coroutine and the renewer) are owned by `run()`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from api.client import Client
from api.coordination import Lease, LeaseSpec
from api.errors import AlreadyExists, ApiError, Conflict, NotFound
from api.meta import ObjectMeta

__all__ = ["LeaderElector"]

log = logging.getLogger(__name__)

JITTER = 1.2  # candidates wait retry_period * (1 + U(0, JITTER)) between attempts, as client-go


class LeaderElector:
    def __init__(
        self,
        client: Client,
        *,
        name: str,
        identity: str,
        namespace: str = "kube-system",
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        release_on_cancel: bool = True,
    ) -> None:
        if not identity:
            raise ValueError("identity must not be empty")
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period > 0")
        self._client = client
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_cancel = release_on_cancel
        self._leading = False
        self._running = False
        # What we last saw in the Lease, and when (loop time) it last changed.
        self._observed: tuple[object, ...] | None = None
        self._observed_spec: LeaseSpec | None = None
        self._observed_at = 0.0

    # ------------------------------------------------------------- observers

    def is_leader(self) -> bool:
        return self._leading

    @property
    def leader(self) -> str | None:
        """The holder named by the Lease when we last read it (None if unheld or unknown)."""
        spec = self._observed_spec
        return spec.holder_identity or None if spec is not None else None

    # ------------------------------------------------------------------- run

    async def run(self, on_started_leading: Callable[[], Awaitable[None]]) -> None:
        """Wait to become leader, then run `on_started_leading` while renewing the Lease."""
        if self._running:
            raise RuntimeError(f"leader elector {self.name}/{self.identity} is already running")
        self._running = True
        try:
            await self._acquire()
            await self._lead(on_started_leading)
        finally:
            self._running = False

    async def _acquire(self) -> None:
        while True:
            if await self._try_acquire_or_renew():
                break
            await asyncio.sleep(self.retry_period * (1 + random.uniform(0, JITTER)))
        self._leading = True
        log.info("%s: %s became leader of lease %s/%s", self.name, self.identity, self.namespace, self.name)

    async def _lead(self, on_started_leading: Callable[[], Awaitable[None]]) -> None:
        work: asyncio.Task[None] = asyncio.ensure_future(on_started_leading())
        renew = asyncio.create_task(self._renew_until_lost(), name=f"lease-renew-{self.name}")
        lost = False
        try:
            await asyncio.wait({work, renew}, return_when=asyncio.FIRST_COMPLETED)
            lost = renew.done() and not work.done()
        finally:
            # The leader's work stops first: nothing may act as leader once we are not.
            work.cancel()
            renew.cancel()
            await asyncio.wait({work, renew})
            self._leading = False
            if lost:
                log.warning("%s: %s lost the lease %s/%s", self.name, self.identity, self.namespace, self.name)
            elif self.release_on_cancel:
                await self._release()
        if not work.cancelled() and (exc := work.exception()) is not None:
            raise exc

    async def _renew_until_lost(self) -> None:
        """Renew every retry_period; return once no renewal succeeded for renew_deadline."""
        loop = asyncio.get_running_loop()
        last_renewal = loop.time()
        while True:
            await asyncio.sleep(self.retry_period)
            while True:
                remaining = last_renewal + self.renew_deadline - loop.time()
                if remaining <= 0:
                    return
                try:
                    async with asyncio.timeout(remaining):
                        renewed = await self._try_acquire_or_renew()
                except TimeoutError:
                    return
                if renewed:
                    last_renewal = loop.time()
                    break
                holder = self.leader
                if holder is not None and holder != self.identity:
                    return  # someone else holds it now: we are not the leader, whatever the deadline
                await asyncio.sleep(min(self.retry_period, max(remaining - 0.001, 0)))

    # ------------------------------------------------------------ the lease

    async def _try_acquire_or_renew(self) -> bool:
        """One attempt; False if the lease is held by another live holder or the write lost a race."""
        try:
            return await self._attempt()
        except (ApiError, ConnectionError, TimeoutError) as e:
            log.debug("%s: %s could not acquire or renew: %s", self.name, self.identity, e)
            return False

    async def _attempt(self) -> bool:
        now = datetime.now(UTC)
        duration = max(1, math.ceil(self.lease_duration))
        try:
            lease = await self._client.get(Lease, self.name, namespace=self.namespace)
        except NotFound:
            lease = Lease(metadata=ObjectMeta(name=self.name, namespace=self.namespace),
                          spec=LeaseSpec(holder_identity=self.identity, lease_duration_seconds=duration,
                                         acquire_time=now, renew_time=now, lease_transitions=0))
            try:
                self._observe(await self._client.create(lease))
            except AlreadyExists:
                return False
            return True
        spec = lease.spec or LeaseSpec()
        self._observe(lease)
        holder = spec.holder_identity
        if holder and holder != self.identity and not self._observed_expired():
            return False
        mine = lease.copy_deep()
        new = spec.model_copy(update={"holder_identity": self.identity, "lease_duration_seconds": duration,
                                      "renew_time": now})
        if holder != self.identity:
            new.acquire_time = now
            new.lease_transitions = (spec.lease_transitions or 0) + 1
        mine.spec = new
        try:
            self._observe(await self._client.update(mine))
        except Conflict:
            return False
        return True

    def _observe(self, lease: Lease) -> None:
        spec = lease.spec or LeaseSpec()
        record = (spec.holder_identity, spec.lease_duration_seconds, spec.acquire_time, spec.renew_time,
                  spec.lease_transitions)
        if record != self._observed:
            self._observed = record
            self._observed_at = asyncio.get_running_loop().time()
        self._observed_spec = spec

    def _observed_expired(self) -> bool:
        spec = self._observed_spec
        duration = (spec.lease_duration_seconds if spec else None) or self.lease_duration
        return self._observed_at + duration <= asyncio.get_running_loop().time()

    async def _release(self) -> None:
        """Hand the lease back (best effort, bounded): clear the holder if it is still us."""
        try:
            async with asyncio.timeout(self.renew_deadline):
                for _ in range(3):  # a renewal still in flight when we were cancelled may win the race
                    lease = await self._client.get(Lease, self.name, namespace=self.namespace)
                    if lease.spec is None or lease.spec.holder_identity != self.identity:
                        return
                    released = lease.copy_deep()
                    released.spec = lease.spec.model_copy(update={
                        "holder_identity": None, "lease_duration_seconds": 1, "renew_time": datetime.now(UTC)})
                    try:
                        self._observe(await self._client.update(released))
                    except Conflict:
                        continue
                    log.info("%s: %s released the lease", self.name, self.identity)
                    return
        except (ApiError, ConnectionError, TimeoutError) as e:
            log.warning("%s: %s could not release the lease: %s", self.name, self.identity, e)
