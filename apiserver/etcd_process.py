"""Run etcd as a child process: `kubelite server` embeds one, and the tests start one
per test module on tmpfs.

etcd comes from the distribution (Debian: `apt install etcd-server`). The child is
started in its own process group and stopped (SIGTERM, then SIGKILL) on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


class EtcdNotInstalled(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "etcd was not found on PATH: install it (Debian/Ubuntu: `sudo apt install etcd-server`) "
            "or point kubelite at an existing cluster with --etcd-servers URL"
        )


class EtcdStartFailed(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EtcdProcess:
    """One etcd member listening on loopback; `url` is its client endpoint.

    `fast=True` uses the settings from DESIGN.md for tests (10 ms heartbeats, no fsync):
    fine on tmpfs, never for data you want to keep.
    """

    def __init__(self, data_dir: Path, *, fast: bool = False, client_port: int | None = None,
                 log_file: Path | None = None) -> None:
        self.data_dir = data_dir
        self.fast = fast
        self._fixed_port = client_port is not None
        self.client_port = client_port or free_port()
        self.peer_port = free_port()
        self.log_file = log_file or data_dir.parent / f"{data_dir.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def command(self) -> list[str]:
        binary = shutil.which("etcd")
        if binary is None:
            raise EtcdNotInstalled()
        cmd = [
            binary,
            "--name", "kubelite",
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.url,
            "--advertise-client-urls", self.url,
            "--listen-peer-urls", f"http://127.0.0.1:{self.peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_port}",
            "--initial-cluster", f"kubelite=http://127.0.0.1:{self.peer_port}",
            "--log-level", "error",
            "--logger", "zap",
        ]
        if self.fast:
            cmd += ["--heartbeat-interval=10", "--election-timeout=50", "--unsafe-no-fsync"]
        return cmd

    def start(self, *, timeout: float = 15.0) -> None:
        """Start and wait until the client port answers. Ports picked by `free_port` can be
        taken by someone else before etcd binds them; then new ones are picked (3 tries)."""
        for attempt in range(3):
            try:
                self._start_once(timeout)
                return
            except EtcdStartFailed:
                if attempt == 2 or not self._lost_port_race():
                    raise
                if not self._fixed_port:
                    self.client_port = free_port()
                self.peer_port = free_port()

    def _lost_port_race(self) -> bool:
        try:
            return "address already in use" in self.log_file.read_text(errors="replace")[-4000:]
        except OSError:
            return False

    def _start_once(self, timeout: float) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log = open(self.log_file, "ab")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=log,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EtcdStartFailed(f"etcd exited with {self.process.returncode}; see {self.log_file}")
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.client_port), timeout=0.2
            ):
                return
            time.sleep(0.02)
        self.stop()
        raise EtcdStartFailed(f"etcd did not listen on {self.url} within {timeout}s; see {self.log_file}")

    def stop(self, *, timeout: float = 5.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    async def astart(self, *, timeout: float = 15.0) -> None:
        await asyncio.to_thread(self.start, timeout=timeout)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)
