"""Real components for tests: an etcd on tmpfs and a kubelite API server on loopback."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from aiohttp import web

from apiserver.app import ServerConfig, create_app
from apiserver.etcd_process import EtcdProcess, free_port

SHM = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
# This process's own tmpfs directory: sessions running side by side never see each other's files.
TMPFS = SHM / f"kltest-s{os.getpid()}"


class Etcd:
    """A real etcd with the fast test flags from DESIGN.md, its data on tmpfs."""

    def __init__(self) -> None:
        TMPFS.mkdir(exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="kltest-etcd-", dir=TMPFS))
        self.process = EtcdProcess(self.dir / "data", fast=True, log_file=self.dir / "etcd.log")

    @property
    def url(self) -> str:
        return self.process.url

    def start(self) -> None:
        try:
            self.process.start()
        except Exception:
            self.remove()
            raise

    def stop(self) -> None:
        self.process.stop()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class ApiServer:
    """A kubelite API server in the test's event loop, on a fixed loopback port so that a
    restart keeps its URL."""

    def __init__(self, etcd_url: str, **config: object) -> None:
        self.port = free_port()
        self.config = ServerConfig(etcd_servers=etcd_url, **config)  # type: ignore[arg-type]
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def app(self) -> web.Application:
        assert self.runner is not None
        return self.runner.app

    async def start(self) -> None:
        self.runner = web.AppRunner(create_app(self.config), handle_signals=False, shutdown_timeout=1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()
