"""DNS messages through dnslib: parse a query, turn a `zone.Answer` into a reply, size it.

    request = parse(data)                          # None: not a DNS message at all
    reply = zone_reply(request, answer, zone)      # a dnslib DNSRecord
    data = encode(reply, request, limit=udp_limit(request))   # TC and no records if too big

Invariants: a reply always carries the request's id and question (the question's spelling,
so 0x20 case randomisation round-trips); it carries an OPT record exactly when the request
did (RFC 6891 6.1.1); a reply over `limit` bytes is sent as header + question + OPT with TC
set, never cut mid-record (RFC 2181 9), so the client retries over TCP. Nothing here keeps
state or does I/O.
"""

from __future__ import annotations

from dnslib import AAAA as DnsAAAA
from dnslib import CNAME as DnsCNAME
from dnslib import EDNS0, RR, DNSError, DNSHeader, DNSRecord, EDNSOption
from dnslib import NS as DnsNS
from dnslib import PTR as DnsPTR
from dnslib import SOA as DnsSOA
from dnslib import SRV as DnsSRV
from dnslib import TXT as DnsTXT
from dnslib import A as DnsA

from dns.records import AAAA, CNAME, NS, PTR, SOA, SRV, TXT, A, Record
from dns.zone import Answer, Zone

__all__ = ["EDNS_PAYLOAD", "encode", "error_reply", "parse", "udp_limit", "zone_reply"]

OPT = 41
EDNS_PAYLOAD = 1232  # what we advertise and the largest UDP reply we send (the DNS flag day value)
CLASSIC_LIMIT = 512
EDE = 15  # the Extended DNS Errors option (RFC 8914)
EDE_NO_REACHABLE_AUTHORITY = 22


def parse(data: bytes) -> DNSRecord | None:
    try:
        return DNSRecord.parse(data)
    except (DNSError, ValueError, IndexError, UnicodeDecodeError):
        return None


def _edns(request: DNSRecord) -> RR | None:
    for rr in request.ar:
        if rr.rtype == OPT:
            return rr
    return None


def udp_limit(request: DNSRecord) -> int:
    """The largest UDP reply this client takes: 512 without EDNS, else its size (512..1232)."""
    opt = _edns(request)
    if opt is None:
        return CLASSIC_LIMIT
    return max(CLASSIC_LIMIT, min(int(opt.rclass), EDNS_PAYLOAD))


def _skeleton(request: DNSRecord, rcode: int, *, aa: bool, ede: tuple[int, str] | None = None) -> DNSRecord:
    reply = DNSRecord(DNSHeader(id=request.header.id, bitmap=request.header.bitmap, qr=1, aa=int(aa), ra=1,
                                tc=0, ad=0, z=0, rcode=rcode), q=request.q)
    if _edns(request) is not None:
        opts = [] if ede is None else [EDNSOption(EDE, ede[0].to_bytes(2, "big") + ede[1].encode())]
        reply.add_ar(EDNS0(udp_len=EDNS_PAYLOAD, opts=opts))
    return reply


# Record types whose data is one string (an address or a name).
_ONE_VALUE: dict[int, type] = {A: DnsA, AAAA: DnsAAAA, CNAME: DnsCNAME, PTR: DnsPTR, NS: DnsNS, TXT: DnsTXT}


def _rr(record: Record, zone: Zone, owner: object) -> RR:
    data = record.data
    rdata: object
    simple = _ONE_VALUE.get(record.rtype)
    if simple is not None:
        rdata = simple(str(data))
    elif record.rtype == SRV:
        assert isinstance(data, tuple)
        priority, weight, port, target = data
        rdata = DnsSRV(priority=priority, weight=weight, port=port, target=target)
    elif record.rtype == SOA:
        return _soa(zone)
    else:  # pragma: no cover - records.py makes no other type
        raise ValueError(f"cannot encode record type {record.rtype}")
    return RR(owner, record.rtype, rdata=rdata, ttl=zone.ttl)


def _soa(zone: Zone) -> RR:
    serial = zone.serial
    # refresh, retry, expire, minimum (the negative-caching TTL: the records' own TTL)
    times = (serial, 7200, 1800, 86400, zone.ttl)
    return RR(zone.origin, SOA, rdata=DnsSOA(zone.ns_name, f"hostmaster.{zone.origin}", times), ttl=zone.ttl)


def zone_reply(request: DNSRecord, answer: Answer, zone: Zone) -> DNSRecord:
    """The authoritative reply to `request` (one question) from `answer`."""
    reply = _skeleton(request, answer.rcode, aa=True)
    asked = request.q.qname
    lowered = str(asked).lower()
    for record in answer.answer:
        reply.add_answer(_rr(record, zone, asked if record.name == lowered else record.name))
    if answer.soa:
        reply.add_auth(_soa(zone))
    for record in answer.additional:
        reply.add_ar(_rr(record, zone, record.name))
    return reply


def error_reply(request: DNSRecord, rcode: int, *, ede: tuple[int, str] | None = None) -> DNSRecord:
    """An empty reply with `rcode` (SERVFAIL, REFUSED, NOTIMP, FORMERR), with an Extended DNS
    Error saying why when the client speaks EDNS."""
    return _skeleton(request, rcode, aa=False, ede=ede)


def encode(reply: DNSRecord, request: DNSRecord, *, limit: int | None) -> bytes:
    """The reply's bytes; over `limit` (UDP), the truncated form (see module doc)."""
    data = bytes(reply.pack())
    if limit is None or len(data) <= limit:
        return data
    short = _skeleton(request, reply.header.rcode, aa=bool(reply.header.aa))
    short.header.tc = 1
    return bytes(short.pack())


def header_error(data: bytes, rcode: int) -> bytes | None:
    """FORMERR-style reply for a message dnslib cannot parse: its id and opcode, no question.
    None when there is not even a header (nothing to answer)."""
    if len(data) < 12 or data[2] & 0x80:  # too short, or itself a response: never answer those
        return None
    flags = 0x80 | (data[2] & 0x79)  # QR, keep opcode and RD
    return data[:2] + bytes([flags, rcode & 0x0F]) + b"\x00" * 8
