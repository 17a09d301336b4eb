"""The DNS server: UDP and TCP on one port, answering the zone from memory, forwarding the rest.

    server = DnsServer(zone, Forwarder(upstreams), bind="127.0.0.1", port=53)
    await server.start()          # bound; server.port is the real port (0 picks one)
    ...
    await server.close()

Hot path (a UDP query for a name already asked since the zone last changed): the query's bytes
after the 2-byte id are the key of a dict of encoded replies; a hit is the query id + the cached
bytes, with no parsing at all. The key holds the whole question (name spelling, type, class,
flags, EDNS record), so a hit is exactly the reply dnslib would build again. Every other query is
parsed by dnslib; a zone answer is built, encoded, cached and sent. A cached answer is filed
under every name it depends on (the question, each record's owner, each CNAME's target) and
dropped when the zone says one of them changed (`Zone.add_listener`), so churn in one Service
leaves the rest of the cache warm. UDP and TCP have separate caches (only UDP truncates); the
caches and the name index are bounded (all cleared when full).

Names the zone does not own, and the targets of CNAMEs leaving the zone (ExternalName), are
forwarded (`dns.forward`) in a task; at most `max_tasks` of those tasks exist at once, and a
query beyond that gets SERVFAIL at once (a flood of outside names cannot grow memory).
TCP: at most `max_tcp` connections, each closed after `tcp_idle` seconds without a query;
queries on one connection are answered in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from dnslib import DNSHeader, DNSQuestion, DNSRecord

from dns.forward import Forwarder, ForwardError
from dns.records import CNAME
from dns.wire import EDE_NO_REACHABLE_AUTHORITY, encode, error_reply, header_error, parse, udp_limit, zone_reply
from dns.zone import ANY, Answer, Zone

__all__ = ["DnsServer"]

log = logging.getLogger(__name__)

FORMERR, SERVFAIL, NOTIMP, REFUSED = 1, 2, 4, 5
ZONE_TRANSFERS = (251, 252)  # IXFR, AXFR: not offered
CACHE_ENTRIES = 65_536
UDP_BUFFER = 4 * 1024 * 1024


class DnsServer:
    """See the module doc."""

    def __init__(self, zone: Zone, forwarder: Forwarder, *, bind: str = "127.0.0.1", port: int = 53,
                 max_tasks: int = 1024, max_tcp: int = 256, tcp_idle: float = 10.0) -> None:
        self.zone = zone
        self.forwarder = forwarder
        self.bind = bind
        self.port = port
        self.max_tasks = max_tasks
        self.max_tcp = max_tcp
        self.tcp_idle = tcp_idle
        self._udp_cache: dict[bytes, bytes] = {}
        self._tcp_cache: dict[bytes, bytes] = {}
        self._keys_by_name: dict[str, set[bytes]] = {}  # name -> cache keys whose answer used it
        self._filed = 0  # entries in _keys_by_name, stale ones included
        zone.add_listener(self._invalidate)
        self._tasks: set[asyncio.Task[None]] = set()
        self._tcp_clients: set[asyncio.Task[Any]] = set()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    # ------------------------------------------------------------ lifetime

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.bind else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_BUFFER)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, UDP_BUFFER)
            sock.bind((self.bind, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=sock)
        self._udp = transport
        try:
            self._tcp = await asyncio.start_server(self._tcp_client, self.bind, self.port, reuse_address=True)
        except OSError:
            transport.close()
            raise
        log.info("DNS listening on %s port %d (UDP and TCP), zone %s", self.bind, self.port, self.zone.origin)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
        for task in [*self._tasks, *self._tcp_clients]:
            task.cancel()
        for task in [*self._tasks, *self._tcp_clients]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._tcp is not None:
            await self._tcp.wait_closed()
            self._tcp = None

    async def __aenter__(self) -> DnsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ answering

    def answer_local(self, data: bytes, *, udp: bool) -> bytes | DNSRecord | None:
        """The reply to `data` if the zone answers it (or it is malformed), else the parsed
        request to forward; None: drop it (not a query)."""
        cache = self._udp_cache if udp else self._tcp_cache
        key = data[2:]
        hit = cache.get(key)
        if hit is not None:
            return data[:2] + hit
        request = parse(data)
        if request is None:
            return header_error(data, FORMERR)
        header = request.header
        if header.qr:
            return None
        if header.opcode != 0:
            return encode(error_reply(request, NOTIMP), request, limit=None)
        if len(request.questions) != 1:
            return encode(error_reply(request, FORMERR), request, limit=None)
        q = request.q
        name = str(q.qname).lower()
        if not self.zone.owns(name):
            return request
        if q.qclass not in (1, 255) or q.qtype in ZONE_TRANSFERS:
            return encode(error_reply(request, REFUSED), request, limit=None)
        answer = self.zone.lookup(name, int(q.qtype))
        if self._leaves_zone(answer, int(q.qtype)):
            return request  # an ExternalName: the rest of the chain comes from upstream
        try:
            out = encode(zone_reply(request, answer, self.zone), request, limit=udp_limit(request) if udp else None)
        except Exception:  # a record dnslib refuses to encode: SERVFAIL rather than silence
            log.exception("cannot encode the answer for %s %s", name, q.qtype)
            return encode(error_reply(request, SERVFAIL), request, limit=None)
        if len(cache) >= CACHE_ENTRIES or self._filed >= 4 * CACHE_ENTRIES:
            self._invalidate(None)  # includes stale index entries left by partial invalidations
        cache[key] = out[2:]
        names = {name}
        for record in answer.answer:
            names.add(record.name)
            if record.rtype == CNAME:
                names.add(str(record.data))
        for used in names:
            self._keys_by_name.setdefault(used, set()).add(key)
        self._filed += len(names)
        return out

    def _invalidate(self, names: set[str] | None) -> None:
        """Drop the cached answers that used any of `names` (None: all of them)."""
        if names is None:
            self._udp_cache.clear()
            self._tcp_cache.clear()
            self._keys_by_name.clear()
            self._filed = 0
            return
        for name in names:
            for key in self._keys_by_name.pop(name, ()):
                self._udp_cache.pop(key, None)
                self._tcp_cache.pop(key, None)

    def _leaves_zone(self, answer: Answer, qtype: int) -> bool:
        last = answer.answer[-1] if answer.answer else None
        return (last is not None and last.rtype == CNAME and qtype not in (CNAME, ANY)
                and not self.zone.in_zone(str(last.data)))

    async def answer_forwarded(self, request: DNSRecord, *, udp: bool) -> bytes:
        """The reply to a request `answer_local` handed back: forwarded as it is, or, for a name
        whose CNAME leaves the zone (ExternalName), the zone's CNAME plus the upstream's answer
        for the target (as CoreDNS does)."""
        q = request.q
        name = str(q.qname).lower()
        try:
            if self.zone.owns(name):
                answer = self.zone.lookup(name, int(q.qtype))
                reply = zone_reply(request, answer, self.zone)
                if self._leaves_zone(answer, int(q.qtype)):
                    target = DNSRecord(DNSHeader(id=request.header.id, rd=1),
                                       q=DNSQuestion(str(answer.answer[-1].data), q.qtype, q.qclass))
                    upstream = await self.forwarder.resolve(target)
                    for rr in upstream.rr:
                        reply.add_answer(rr)
                    reply.header.rcode = upstream.header.rcode
            else:
                reply = await self.forwarder.resolve(request)
        except ForwardError as err:
            reply = error_reply(request, SERVFAIL, ede=(EDE_NO_REACHABLE_AUTHORITY, str(err)))
        return encode(reply, request, limit=udp_limit(request) if udp else None)

    # ------------------------------------------------------------ UDP

    def forward_udp(self, request: DNSRecord, addr: Any) -> None:
        if len(self._tasks) >= self.max_tasks:
            reply = error_reply(request, SERVFAIL, ede=(EDE_NO_REACHABLE_AUTHORITY, "server busy"))
            self._send(encode(reply, request, limit=udp_limit(request)), addr)
            return
        task = asyncio.get_running_loop().create_task(self._forward_task(request, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward_task(self, request: DNSRecord, addr: Any) -> None:
        try:
            self._send(await self.answer_forwarded(request, udp=True), addr)
        except Exception:
            log.exception("forwarding %s failed", request.q.qname)

    def _send(self, data: bytes, addr: Any) -> None:
        if self._udp is not None:
            self._udp.sendto(data, addr)

    # ------------------------------------------------------------ TCP

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if len(self._tcp_clients) >= self.max_tcp or task is None:
            writer.close()
            return
        self._tcp_clients.add(task)
        try:
            while True:
                async with asyncio.timeout(self.tcp_idle):
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    data = await reader.readexactly(size)
                result = self.answer_local(data, udp=False)
                if result is None:
                    continue
                if isinstance(result, DNSRecord):
                    result = await self.answer_forwarded(result, udp=False)
                writer.write(len(result).to_bytes(2, "big") + result)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            self._tcp_clients.discard(task)
            writer.close()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            result = self.server.answer_local(data, udp=True)
        except Exception:
            log.exception("answering a query from %s failed", addr)
            return
        if result is None:
            return
        if isinstance(result, DNSRecord):
            self.server.forward_udp(result, addr)
        elif self.transport is not None:
            self.transport.sendto(result, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP errors for replies: nothing to do
        log.debug("UDP error: %s", exc)
