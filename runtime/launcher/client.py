"""asyncio side of the launcher: start it if needed, send one request per connection.

The client never forks a container itself; at most it spawns the launcher once
(``sys.executable -S -m runtime.launcher.server``, exec'd at once, in its own session
so it outlives the runtime that started it).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from runtime.launcher import protocol


class LauncherError(Exception):
    """The launcher could not be reached or refused a request; the message says which."""


class LauncherClient:
    def __init__(self, socket_path: Path, *, log_path: Path) -> None:
        self.socket_path = socket_path
        self.log_path = log_path

    async def ensure_running(self, *, timeout: float = 10.0) -> int:
        """Connect to a live launcher or start one; returns its pid."""
        try:
            return int((await self.request({"op": "ping"}))["pid"])
        except LauncherError:
            pass
        self._spawn()
        deadline = time.monotonic() + timeout
        while True:
            try:
                return int((await self.request({"op": "ping"}))["pid"])
            except LauncherError as e:
                if time.monotonic() > deadline:
                    raise LauncherError(f"launcher did not come up within {timeout}s "
                                        f"(see {self.log_path}): {e}") from e
                await asyncio.sleep(0.01)

    def _spawn(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = package_root + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # -S: no site-packages; the launcher needs only the stdlib and this package,
            # and a smaller heap is a smaller PSS for every shim forked from it.
            subprocess.Popen(
                [sys.executable, "-S", "-m", "runtime.launcher.server", "--socket", str(self.socket_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd="/",
                start_new_session=True, close_fds=True,
            )

    async def request(self, msg: dict[str, Any], fds: list[int] | None = None) -> dict[str, Any]:
        """Send ``msg`` (and ``fds``), return the reply; raises LauncherError when it says not ok."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.setblocking(False)
        try:
            try:
                await loop.sock_connect(sock, str(self.socket_path))
                data = protocol.encode(msg)
                if fds:
                    socket.send_fds(sock, [data], fds)
                else:
                    await loop.sock_sendall(sock, data)
                raw = await loop.sock_recv(sock, protocol.MAX_MESSAGE)
            except OSError as e:
                raise LauncherError(f"launcher at {self.socket_path} unreachable: {e}") from e
            if not raw:
                raise LauncherError(f"launcher at {self.socket_path} closed the connection")
            reply = protocol.decode(raw)
        finally:
            sock.close()
        if not reply.get("ok"):
            raise LauncherError(str(reply.get("error", "unknown launcher error")))
        return reply

    async def shutdown(self) -> None:
        try:
            await self.request({"op": "shutdown"})
        except LauncherError:
            pass
