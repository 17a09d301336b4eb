"""The proxier: informers on Services and EndpointSlices -> the applier, level-triggered.

    Service informer ──┐ handlers mark the Service key dirty, wake the loop
    Slice informer ────┘ (a slice by its kubernetes.io/service-name label)
          loop: wait for dirty keys -> wait out the rest of `min_interval` since the last apply
                (bursts coalesce) -> translate only the dirty Services from the caches ->
                Applier.update (one nft transaction) in a thread
          every `resync_period`: Applier.resync of every Service (repairs drift: a flushed or
                deleted table), also the first apply after the caches synced

Invariants: handlers never do I/O; the loop reads only the caches, so whatever happened
between two applies, the next one converges on the latest state (nothing is lost by
coalescing). A failed apply keeps its keys dirty and is retried after a pause; the table is
rebuilt whole at the next resync in any case. The cost of an update depends on the Services
that changed, not on how many exist (translation and diff are per Service).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from api.client import Client
from api.informer import Informer, object_key
from api.services import EndpointSlice, Service
from proxy.applier import Applier, ApplyError
from proxy.rules import Context, Fragment, slice_service_key, translate

log = logging.getLogger(__name__)

SERVICE_INDEX = "service"


def _slice_index(es: EndpointSlice) -> list[str]:
    key = slice_service_key(es)
    return [key] if key else []


class Proxier:
    def __init__(self, client: Client, ctx: Context, *, netns_path: str | None = None,
                 min_interval: float = 0.01, resync_period: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.applier = Applier(ctx, netns_path=netns_path)
        self.services: Informer[Service] = Informer(client, Service)
        self.slices: Informer[EndpointSlice] = Informer(client, EndpointSlice, indexers={SERVICE_INDEX: _slice_index})
        self.min_interval = min_interval
        self.resync_period = resync_period
        self.clock = clock
        self.dirty: set[str] = set()
        self.wake = asyncio.Event()
        self.synced = asyncio.Event()  # set after the first full apply
        self.applies = 0
        self.services.add_handler(on_add=self._service, on_update=lambda _o, n: self._service(n),
                                  on_delete=self._service)
        self.slices.add_handler(on_add=self._slice, on_update=self._slice_update, on_delete=self._slice)

    # -- handlers: enqueue only ---------------------------------------------------------

    def _mark(self, key: str | None) -> None:
        if key:
            self.dirty.add(key)
            self.wake.set()

    def _service(self, svc: Service) -> None:
        self._mark(object_key(svc))

    def _slice(self, es: EndpointSlice) -> None:
        self._mark(slice_service_key(es))

    def _slice_update(self, old: EndpointSlice, new: EndpointSlice) -> None:
        self._mark(slice_service_key(old))
        self._mark(slice_service_key(new))

    # -- translation from the caches ----------------------------------------------------

    def fragment(self, key: str) -> Fragment | None:
        svc = self.services.get(key)
        if svc is None:
            return None
        return translate(svc, self.slices.by_index(SERVICE_INDEX, key), self.ctx)

    def everything(self) -> dict[str, Fragment | None]:
        return {object_key(s): self.fragment(object_key(s)) for s in self.services.list()}

    # -- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.services.run(), name="proxy-service-informer")
            tg.create_task(self.slices.run(), name="proxy-slice-informer")
            await self.services.wait_synced()
            await self.slices.wait_synced()
            await self._loop()

    async def _loop(self) -> None:
        last_resync = -float("inf")
        last_apply = -float("inf")
        delay = 0.1
        while True:
            now = self.clock()
            if now - last_resync >= self.resync_period:
                self.dirty.clear()
                ok = await self._apply(full=True)
                if ok:
                    last_resync = last_apply = self.clock()
                    self.synced.set()
            elif self.dirty:
                wait = self.min_interval - (now - last_apply)
                if wait > 0:
                    await asyncio.sleep(wait)
                ok = await self._apply(full=False)
                last_apply = self.clock()
            else:
                self.wake.clear()
                timeout = max(0.0, self.resync_period - (now - last_resync))
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout)
                except TimeoutError:
                    pass
                continue
            if ok:
                delay = 0.1
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _apply(self, *, full: bool) -> bool:
        if full:
            fragments = self.everything()
            work: Callable[[], object] = lambda: self.applier.resync(fragments)  # noqa: E731
            keys: set[str] = set()
        else:
            keys, self.dirty = self.dirty, set()
            changes = {k: self.fragment(k) for k in keys}
            work = lambda: self.applier.update(changes)  # noqa: E731
        try:
            await asyncio.to_thread(work)
        except (ApplyError, OSError) as err:
            log.warning("proxy: failed to apply the service rules (retrying): %s", err)
            self.dirty |= keys
            return False
        self.applies += 1
        return True

    async def teardown(self) -> None:
        await asyncio.to_thread(self.applier.teardown)
