"""A lean HTTP/1.1 load generator for the benchmarks: keep-alive connections, one request
in flight on each, written straight to the transport.

Why not aiohttp's client: on the two-core machine the load generator shares the CPU with
the server it measures, and an aiohttp client request costs ~0.13 ms of CPU, a quarter
of what the API server spends serving a create. This client costs a few tens of
microseconds, the way `wrk` or `hey` would, so the figures measure the server rather
than the client. It speaks only what the benchmarks need: requests with a body or none,
responses framed by Content-Length (aiohttp frames every non-streaming response so).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class HTTPLoadError(Exception):
    pass


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._head_end = -1
        self._length = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports do not subclass asyncio's

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(HTTPLoadError(f"connection closed by the server: {exc}"))

    def data_received(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        if self._head_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self._head_end = end + 4
            head = bytes(buf[:end]).lower()
            if b"transfer-encoding: chunked" in head:
                self._fail("chunked responses are not supported")
                return
            start = head.find(b"\r\ncontent-length:")
            self._length = int(head[start + 17:head.find(b"\r\n", start + 2)]) if start >= 0 else 0
        total = self._head_end + self._length
        if len(buf) < total:
            return
        status = int(buf[9:12])
        body = bytes(buf[self._head_end:total])
        del buf[:total]
        self._head_end = -1
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))

    def _fail(self, message: str) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(HTTPLoadError(message))
        if self.transport is not None:
            self.transport.close()

    def request(self, raw: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self._waiter


class Client:
    """`connections` keep-alive connections to one server; `request()` borrows an idle one."""

    def __init__(self, base: str) -> None:
        url = urlsplit(base)
        if url.scheme != "http" or url.hostname is None:
            raise ValueError(f"only http://host:port is supported, not {base}")
        self.host, self.port = url.hostname, url.port or 80
        self._idle: list[_Connection] = []

    async def _connection(self) -> _Connection:
        if self._idle:
            return self._idle.pop()
        _, conn = await asyncio.get_running_loop().create_connection(_Connection, self.host, self.port)
        return conn

    async def request(self, method: str, path: str, body: bytes = b"",
                      content_type: str = "application/json") -> tuple[int, bytes]:
        """(status, body) of one request."""
        conn = await self._connection()
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n")
        result = await conn.request(head.encode() + body)
        self._idle.append(conn)
        return result

    def close(self) -> None:
        for conn in self._idle:
            if conn.transport is not None:
                conn.transport.close()
        self._idle.clear()
