"""Names outside the cluster zone: ask the upstream resolvers, remember answers for their TTL.

    forwarder = Forwarder(upstreams_from_resolv_conf() or [("1.1.1.1", 53)])
    reply = await forwarder.resolve(request)     # a dnslib DNSRecord for the client

Each upstream is tried in order, over UDP from a fresh socket (a random source port and id,
so off-path spoofing must guess both), again over TCP when the UDP answer is truncated, with
`timeout` seconds each. The reply is the upstream's, with the client's id and question.

Bounds (a flood must not grow memory or tasks without limit): at most `max_inflight`
distinct questions in flight - identical questions in flight share one upstream query - and
beyond it the caller gets `Overloaded` at once; the cache holds at most `cache_size` answers.
Cache: keyed by (name lower case, type, class); kept for the smallest TTL of the answer and
authority records (negative answers: the SOA's, RFC 2308), at most `max_ttl`; served with TTLs
reduced by the time spent in the cache. SERVFAIL and truncated answers are not cached.
Errors: `NoUpstream` when none is configured, `UpstreamFailed` when every one failed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dnslib import EDNS0, DNSHeader, DNSQuestion, DNSRecord

from dns.wire import EDNS_PAYLOAD, parse

__all__ = ["Forwarder", "NoUpstream", "Overloaded", "UpstreamFailed", "parse_upstream",
           "upstreams_from_resolv_conf"]

log = logging.getLogger(__name__)

Address = tuple[str, int]
SOA_TYPE = 6


class ForwardError(Exception):
    """A name outside the zone could not be resolved; the message says why (sent as an EDE)."""


class NoUpstream(ForwardError):
    pass


class UpstreamFailed(ForwardError):
    pass


class Overloaded(ForwardError):
    pass


def parse_upstream(text: str) -> Address:
    """`1.1.1.1`, `1.1.1.1:5353`, `[fd00::1]:53` or `fd00::1` -> (address, port)."""
    host, port = text.strip(), 53
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif host.count(":") == 1:
        host, _, port_text = host.partition(":")
        port = int(port_text)
    ipaddress.ip_address(host)  # ValueError for a name: upstreams are addresses
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    return host, port


def upstreams_from_resolv_conf(path: Path = Path("/etc/resolv.conf"), *,
                               exclude: Callable[[Address], bool] = lambda _a: False) -> list[Address]:
    """The `nameserver` lines of a resolv.conf (port 53), minus those `exclude` rejects (our own
    listening address: forwarding to ourselves would loop)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    found: list[Address] = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                address = parse_upstream(parts[1].split("%")[0])
            except ValueError:
                continue
            if not exclude(address) and address not in found:
                found.append(address)
    return found


@dataclass(slots=True)
class _Cached:
    data: bytes
    stored: float
    expires: float


class _UdpOnce(asyncio.DatagramProtocol):
    def __init__(self, want_id: int) -> None:
        self.want_id = want_id
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if len(data) >= 2 and int.from_bytes(data[:2], "big") == self.want_id and not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


class Forwarder:
    """See the module doc."""

    def __init__(self, upstreams: list[Address], *, timeout: float = 2.0, max_inflight: int = 512,
                 cache_size: int = 10_000, max_ttl: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.upstreams = list(upstreams)
        self.timeout = timeout
        self.max_inflight = max_inflight
        self.cache_size = cache_size
        self.max_ttl = max_ttl
        self._clock = clock
        self._cache: dict[tuple[str, int, int], _Cached] = {}
        self._inflight: dict[tuple[str, int, int], asyncio.Future[bytes]] = {}

    async def resolve(self, request: DNSRecord) -> DNSRecord:
        """The upstream's reply to `request`'s question, addressed to the client."""
        q = request.q
        key = (str(q.qname).lower(), int(q.qtype), int(q.qclass))
        data = self._cached(key)
        if data is None:
            pending = self._inflight.get(key)
            if pending is None:
                if not self.upstreams:
                    raise NoUpstream("no upstream resolvers configured (kubelite dns --upstream IP)")
                if len(self._inflight) >= self.max_inflight:
                    raise Overloaded(f"{len(self._inflight)} upstream queries already in flight")
                pending = asyncio.ensure_future(self._ask(q))
                self._inflight[key] = pending
                pending.add_done_callback(lambda f: self._done(key, f))
            data = await asyncio.shield(pending)
        reply = DNSRecord.parse(data)
        reply.header.id = request.header.id
        reply.questions = list(request.questions)
        reply.header.q = len(reply.questions)
        reply.ar = [rr for rr in reply.ar if rr.rtype != 41]
        if any(rr.rtype == 41 for rr in request.ar):
            reply.add_ar(EDNS0(udp_len=EDNS_PAYLOAD))
        return reply

    def _done(self, key: tuple[str, int, int], future: asyncio.Future[bytes]) -> None:
        self._inflight.pop(key, None)
        if not future.cancelled():
            future.exception()  # retrieved here: every waiter may have gone (client timeouts)

    def _cached(self, key: tuple[str, int, int]) -> bytes | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        now = self._clock()
        if now >= entry.expires:
            del self._cache[key]
            return None
        age = int(now - entry.stored)
        if age == 0:
            return entry.data
        reply = DNSRecord.parse(entry.data)
        for rr in [*reply.rr, *reply.auth, *reply.ar]:
            if rr.rtype != 41:
                rr.ttl = max(0, rr.ttl - age)
        return bytes(reply.pack())

    def _store(self, key: tuple[str, int, int], reply: DNSRecord, data: bytes) -> None:
        if reply.header.rcode not in (0, 3) or reply.header.tc:
            return
        records = [rr for rr in [*reply.rr, *reply.auth] if rr.rtype != 41]
        if reply.rr:
            ttl = min(rr.ttl for rr in records)
        else:  # negative: the SOA's TTL, bounded by its minimum field (RFC 2308 5)
            soas = [rr for rr in reply.auth if rr.rtype == SOA_TYPE]
            if not soas:
                return
            ttl = min(soas[0].ttl, soas[0].rdata.times[-1])
        ttl = min(float(ttl), self.max_ttl)
        if ttl <= 0:
            return
        if len(self._cache) >= self.cache_size:
            self._evict()
        now = self._clock()
        self._cache[key] = _Cached(data, now, now + ttl)

    def _evict(self) -> None:
        now = self._clock()
        for k in [k for k, v in self._cache.items() if v.expires <= now]:
            del self._cache[k]
        while len(self._cache) >= self.cache_size:  # still full: drop the oldest entries
            del self._cache[next(iter(self._cache))]

    async def _ask(self, question: DNSQuestion) -> bytes:
        failures: list[str] = []
        key = (str(question.qname).lower(), int(question.qtype), int(question.qclass))
        for upstream in self.upstreams:
            query = DNSRecord(DNSHeader(id=random.randrange(65536), rd=1), q=question)
            query.add_ar(EDNS0(udp_len=EDNS_PAYLOAD))
            try:
                data = await self._udp(upstream, query)
                reply = parse(data)
                if reply is not None and reply.header.tc:
                    data = await self._tcp(upstream, query)
                    reply = parse(data)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as err:
                failures.append(f"{_show(upstream)}: {_why(err)}")
                continue
            if reply is None or reply.q.qname != question.qname or reply.q.qtype != question.qtype:
                failures.append(f"{_show(upstream)}: a reply that does not match the question")
                continue
            if reply.header.rcode in (2, 5):  # SERVFAIL, REFUSED: try the next one
                failures.append(f"{_show(upstream)}: rcode {reply.header.rcode}")
                continue
            self._store(key, reply, data)
            return data
        log.info("forwarding %s failed: %s", question.qname, "; ".join(failures))
        raise UpstreamFailed("upstream failed: " + "; ".join(failures))

    async def _udp(self, upstream: Address, query: DNSRecord) -> bytes:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(lambda: _UdpOnce(query.header.id),
                                                                  remote_addr=upstream)
        try:
            transport.sendto(bytes(query.pack()))
            async with asyncio.timeout(self.timeout):
                return await protocol.reply
        finally:
            transport.close()

    async def _tcp(self, upstream: Address, query: DNSRecord) -> bytes:
        async with asyncio.timeout(self.timeout):
            reader, writer = await asyncio.open_connection(*upstream)
            try:
                packed = bytes(query.pack())
                writer.write(len(packed).to_bytes(2, "big") + packed)
                size = int.from_bytes(await reader.readexactly(2), "big")
                return await reader.readexactly(size)
            finally:
                writer.close()


def _show(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _why(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    return str(err) or type(err).__name__
