"""A minimal raw watch consumer for asserting exactly what the server streams."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp


class WatchStream:
    """Collects watch events in the background; `resume=True` reconnects from the last
    resourceVersion seen when the stream ends, as client-go's reflector does."""

    def __init__(self, url: str, path: str, *, resume: bool = False, **params: str) -> None:
        self.url, self.path, self.resume, self.params = url, path, resume, params
        self.events: list[dict[str, Any]] = []
        self.last_rv: str | None = params.get("resourceVersion")
        self.reconnects = 0
        self._task: asyncio.Task[None] | None = None
        self._new = asyncio.Event()

    async def __aenter__(self) -> WatchStream:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _run(self) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                params = {**self.params, "watch": "true"}
                if self.last_rv:
                    params["resourceVersion"] = self.last_rv
                try:
                    async with session.get(self.url + self.path, params=params) as resp:
                        async for line in resp.content:
                            if not line.strip():
                                continue
                            event = json.loads(line)
                            self.events.append(event)
                            rv = event["object"].get("metadata", {}).get("resourceVersion")
                            if rv and event["type"] != "ERROR":
                                self.last_rv = rv
                            self._new.set()
                except (aiohttp.ClientError, ConnectionError):
                    pass
                if not self.resume:
                    return
                self.reconnects += 1
                await asyncio.sleep(0.1)

    def objects(self, *types: str) -> list[tuple[str, str]]:
        return [(e["type"], e["object"]["metadata"].get("name", "")) for e in self.events
                if not types or e["type"] in types]

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        async def loop() -> None:
            while not predicate(self):
                self._new.clear()
                await self._new.wait()
        await asyncio.wait_for(loop(), timeout)
