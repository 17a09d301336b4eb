"""A process started inside a running container, as an asyncio-friendly handle.

The runtime owns the parent ends of the process's stdio (pipes, or one pty master
when ``tty``) and of a status pipe on which the launcher's exec child writes
``exit <code>`` or ``error <message>``. Everything here is non-blocking, so the
kubelet can relay the fds over a WebSocket (``read``/``write``/``resize``).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import struct
import termios
from dataclasses import dataclass


class ExecError(Exception):
    """The process could not be started in the container (the message names the step)."""


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _read(fd: int, n: int) -> bytes:
    """Read up to ``n`` bytes from non-blocking ``fd``; b"" at EOF (EIO on a pty means EOF too)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return os.read(fd, n)
        except BlockingIOError:
            pass
        except OSError as e:
            if e.errno == errno.EIO:
                return b""
            raise
        ready: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, _wake, ready)
        try:
            await ready
        finally:
            loop.remove_reader(fd)


class ExecProcess:
    """Handle on an exec'd process. ``stdout``/``stderr``/``stdin`` are fds or None.

    With ``tty`` there is one fd, the pty master, in both ``stdout`` and ``stdin``;
    ``stderr`` is None (a terminal merges the streams).
    """

    def __init__(self, *, pid: int, tty: bool, stdin: int | None, stdout: int, stderr: int | None,
                 status: int) -> None:
        self.pid, self.tty = pid, tty
        self.stdin, self.stdout, self.stderr, self._status = stdin, stdout, stderr, status
        for fd in {stdin, stdout, stderr, status} - {None}:
            assert fd is not None
            os.set_blocking(fd, False)
        self._exit_code: int | None = None
        self._closed = False

    async def read(self, stream: str = "stdout", n: int = 65536) -> bytes:
        fd = self.stdout if stream == "stdout" else self.stderr
        if fd is None:
            return b""
        return await _read(fd, n)

    async def write(self, data: bytes) -> None:
        if self.stdin is None:
            raise ExecError("exec was started without stdin")
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.stdin, view):]
            except BlockingIOError:
                ready: asyncio.Future[None] = loop.create_future()
                loop.add_writer(self.stdin, _wake, ready)
                try:
                    await ready
                finally:
                    loop.remove_writer(self.stdin)

    def close_stdin(self) -> None:
        """EOF for the process's stdin (for a tty: send ^D with ``write`` instead)."""
        if self.stdin is not None and not self.tty:
            os.close(self.stdin)
            self.stdin = None

    def resize(self, rows: int, cols: int) -> None:
        if not self.tty:
            raise ExecError("resize needs a tty")
        fcntl.ioctl(self.stdout, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def wait(self) -> int:
        """The exit code; raises ExecError when the process never started."""
        if self._exit_code is not None:
            return self._exit_code
        data = b""
        while chunk := await _read(self._status, 4096):
            data += chunk
        errors, code = [], None
        for line in data.decode(errors="replace").splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "exit":
                code = int(rest)
            elif kind == "error":
                errors.append(rest)
        if errors:
            raise ExecError("; ".join(errors))
        if code is None:
            raise ExecError("exec ended without reporting an exit status")
        self._exit_code = code
        return code

    async def communicate(self, data: bytes | None = None) -> ExecResult:
        """Feed ``data`` to stdin, collect all output, wait; closes the handle."""
        async def drain(stream: str) -> bytes:
            chunks = []
            while chunk := await self.read(stream):
                chunks.append(chunk)
            return b"".join(chunks)

        try:
            if data is not None:
                await self.write(data)
            self.close_stdin()
            out, err = await asyncio.gather(drain("stdout"), drain("stderr"))
            return ExecResult(await self.wait(), out, err)
        finally:
            self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for fd in {self.stdin, self.stdout, self.stderr, self._status} - {None}:
            assert fd is not None
            try:
                os.close(fd)
            except OSError:
                pass
