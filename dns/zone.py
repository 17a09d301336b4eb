"""The in-memory zone: records by name and type, kept incrementally, and the answer to a question.

    zone = Zone("cluster.local", ns_address="10.43.0.10")
    zone.set_source(("svc", "default/web"), service_records(svc, slices, "cluster.local"))
    zone.set_namespace("default", True)
    zone.lookup("web.default.svc.cluster.local.", A)   # -> Answer(rcode=NOERROR, answer=[...])

Every Kubernetes object that yields records is a *source* (a key of the caller's choosing);
`set_source` swaps the source's records for new ones, touching only the names involved, so
an update costs the size of one Service, not of the zone. Listeners (`add_listener`) are told
which names' answers may have changed - the owner names of the records removed and added and
their ancestors (whose existence may flip) - or None for "any name" (a namespace came or went,
which changes every `<ip>.<ns>.pod` name). The server drops exactly those cached answers.
`version` grows on every change. The SOA serial is fixed per Zone (nothing transfers it), so a
change does not alter every negative answer.

Answers (RFC 1034 4.3.2, RFC 2308, RFC 8020):

* a name with records of the type: NOERROR, those records (only the lowest `rank`);
* a name with a CNAME (and the question is not for CNAME): the CNAME, followed inside the zone;
* a name that exists with no record of the type, including empty non-terminals (every
  ancestor of a name with records, `svc.<zone>`, `pod.<zone>` and `<ns>.svc.<zone>` for each
  existing namespace): NODATA, i.e. NOERROR, no answer, the SOA in authority;
* `<a-b-c-d>.<ns>.pod.<zone>` for an existing namespace: that address (CoreDNS `pods insecure`);
* any other name in the zone: NXDOMAIN, the SOA in authority.

Names outside the zone are `Zone.owns(name) == False`; reverse names (in-addr.arpa, ip6.arpa)
are answered when known and otherwise left to the forwarder (CoreDNS's `fallthrough`).
Not thread-safe: one event loop owns it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

from dns.records import AAAA, CNAME, EXISTS, NS, SOA, TXT, A, Record, pod_name_address, zone_name

__all__ = ["ANY", "NOERROR", "NXDOMAIN", "Answer", "Zone"]

NOERROR, SERVFAIL, NXDOMAIN, REFUSED = 0, 2, 3, 5
ANY = 255
TTL = 5
REVERSE_SUFFIXES = (".in-addr.arpa.", ".ip6.arpa.")
DNS_SCHEMA_VERSION = "1.1.0"  # the spec's dns-version TXT record


@dataclass(frozen=True, slots=True)
class Answer:
    """What to reply: an rcode, answer records, and whether the zone's SOA goes in authority
    (negative answers). `additional` carries glue (the NS's address)."""

    rcode: int
    answer: tuple[Record, ...] = ()
    soa: bool = False
    additional: tuple[Record, ...] = ()


@dataclass(slots=True)
class _Name:
    by_type: dict[int, list[Record]] = field(default_factory=dict)


class Zone:
    """Records of one cluster domain plus the reverse records of its addresses (see module doc)."""

    def __init__(self, domain: str = "cluster.local", *, ns_address: str | None = None, ttl: int = TTL,
                 serial: int | None = None) -> None:
        self.origin = zone_name(domain)
        self.ttl = ttl
        self.version = 0
        self.serial = int(time.time()) % 2**32 if serial is None else serial
        self._listeners: list[Callable[[set[str] | None], None]] = []
        self._suffix = "." + self.origin
        self._sources: dict[Hashable, tuple[Record, ...]] = {}
        self._names: dict[str, _Name] = {}
        self._exists: dict[str, int] = {}  # names in the zone that exist, with reference counts
        self._namespaces: set[str] = set()
        self.ns_name = f"ns.dns.{self.origin}"
        self.soa = Record(self.origin, SOA, self.ns_name)
        apex: list[Record] = [Record(self.origin, SOA, self.ns_name), Record(self.origin, NS, self.ns_name),
                              Record(f"dns-version.{self.origin}", TXT, DNS_SCHEMA_VERSION)]
        if ns_address:
            apex.append(Record(self.ns_name, AAAA if ":" in ns_address else A, ns_address))
        for structural in ("svc", "pod"):
            self._mark(f"{structural}.{self.origin}", +1)
        self.set_source(("zone",), apex)

    # ------------------------------------------------------------ updates

    def set_source(self, key: Hashable, records: Iterable[Record]) -> bool:
        """Replace the records of `key` (none: forget it). True if anything changed."""
        new = tuple(dict.fromkeys(records))
        old = self._sources.get(key, ())
        if new == old:
            return False
        for record in old:
            self._remove(record)
        for record in new:
            self._add(record)
        if new:
            self._sources[key] = new
        else:
            self._sources.pop(key, None)
        self.version += 1
        if self._listeners:
            changed: set[str] = set()
            for record in old + new:
                self._with_ancestors(record.name, changed)
            self._tell(changed)
        return True

    def add_listener(self, listener: Callable[[set[str] | None], None]) -> None:
        """Call `listener(names)` after every change (see module doc)."""
        self._listeners.append(listener)

    def _tell(self, names: set[str] | None) -> None:
        for listener in self._listeners:
            listener(names)

    def _with_ancestors(self, name: str, into: set[str]) -> None:
        while name not in into:
            into.add(name)
            if not self.in_zone(name) or name == self.origin:
                return
            name = name.split(".", 1)[1]

    def set_namespace(self, namespace: str, exists: bool) -> bool:
        """A namespace makes `<ns>.svc.<zone>` and `<ns>.pod.<zone>` exist (and its pod names answer)."""
        namespace = namespace.lower()
        if (namespace in self._namespaces) == exists:
            return False
        delta = +1 if exists else -1
        (self._namespaces.add if exists else self._namespaces.discard)(namespace)
        self._mark(f"{namespace}.svc.{self.origin}", delta)
        self._mark(f"{namespace}.pod.{self.origin}", delta)
        self.version += 1
        self._tell(None)
        return True

    def _add(self, record: Record) -> None:
        entry = self._names.setdefault(record.name, _Name())
        entry.by_type.setdefault(record.rtype, []).append(record)
        self._mark(record.name, +1)

    def _remove(self, record: Record) -> None:
        entry = self._names.get(record.name)
        if entry is None:
            return
        same = entry.by_type.get(record.rtype)
        if same is not None:
            try:
                same.remove(record)
            except ValueError:
                pass
            if not same:
                del entry.by_type[record.rtype]
        if not entry.by_type:
            del self._names[record.name]
        self._mark(record.name, -1)

    def _mark(self, name: str, delta: int) -> None:
        """Count `name` and each ancestor up to the origin as existing (empty non-terminals)."""
        if not self.in_zone(name):
            return
        while True:
            count = self._exists.get(name, 0) + delta
            if count > 0:
                self._exists[name] = count
            else:
                self._exists.pop(name, None)
            if name == self.origin:
                return
            name = name.split(".", 1)[1]

    # ------------------------------------------------------------ lookups

    def in_zone(self, name: str) -> bool:
        return name == self.origin or name.endswith(self._suffix)

    def owns(self, name: str) -> bool:
        """Whether this server answers `name` (lower case, absolute) itself rather than forwarding."""
        if self.in_zone(name):
            return True
        return name.endswith(REVERSE_SUFFIXES) and name in self._names

    def namespaces(self) -> frozenset[str]:
        return frozenset(self._namespaces)

    def lookup(self, name: str, qtype: int) -> Answer:
        """The answer for (`name`, `qtype`); `name` lower case and absolute (see module doc)."""
        answer: list[Record] = []
        seen: set[str] = set()
        while True:
            entry = self._names.get(name)
            if entry is None:
                synthesized = self._pod_address(name)
                if synthesized is not None:
                    if qtype in (synthesized.rtype, ANY):
                        answer.append(synthesized)
                    return self._finish(answer)
                if name in self._exists or answer:
                    return self._finish(answer)
                return Answer(NXDOMAIN, soa=True) if self.in_zone(name) else self._finish(answer)
            if qtype == ANY:
                for rtype in sorted(entry.by_type):
                    if rtype == EXISTS:
                        continue
                    answer.extend(_lowest_rank(entry.by_type[rtype]))
                return self._finish(answer)
            exact = entry.by_type.get(qtype) if qtype != EXISTS else None
            if exact:
                answer.extend(_lowest_rank(exact))
                return self._finish(answer, glue=qtype == NS)
            cname = entry.by_type.get(CNAME)
            if cname and qtype != CNAME:
                answer.append(cname[0])
                target = str(cname[0].data)
                if target in seen or not self.in_zone(target):
                    return Answer(NOERROR, tuple(answer))
                seen.add(name)
                name = target
                continue
            return self._finish(answer)

    def _finish(self, answer: list[Record], *, glue: bool = False) -> Answer:
        if not answer:
            return Answer(NOERROR, soa=True)
        additional: tuple[Record, ...] = ()
        if glue:
            ns = self._names.get(self.ns_name)
            if ns is not None:
                additional = tuple(r for rs in ns.by_type.values() for r in rs)
        return Answer(NOERROR, tuple(answer), additional=additional)

    def _pod_address(self, name: str) -> Record | None:
        """`<a-b-c-d>.<ns>.pod.<zone>` in an existing namespace -> its A/AAAA record."""
        if not name.endswith(".pod." + self.origin):
            return None
        labels = name[: -len(".pod." + self.origin)].split(".")
        if len(labels) != 2 or labels[1] not in self._namespaces:
            return None
        address = pod_name_address(labels[0])
        if address is None:
            return None
        return Record(name, AAAA if ":" in address else A, address)


def _lowest_rank(records: list[Record]) -> list[Record]:
    best = min(r.rank for r in records)
    return [r for r in records if r.rank == best]
