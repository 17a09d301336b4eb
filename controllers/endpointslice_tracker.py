"""What the EndpointSlice controller wrote that its cache may not show yet.

The slice cache lags the controller's own writes. Planning from a cache that misses a slice
just created would create its endpoints a second time (generateName cannot collide), and one
that still shows a slice just updated would conflict. So, per Service key, the tracker keeps
the resourceVersion of every slice written and the uid of every slice deleted, and a sync
plans nothing until the cache has caught up with all of them (the slice's watch event then
wakes the Service again).

resourceVersions are compared as numbers: kubelite's are etcd revisions, which only grow. An
expectation also ends when the slice is seen deleted (whatever was written is moot) or after
`ttl` seconds, so an event that never comes (a slice deleted by someone else before the cache
saw it) cannot wedge a Service.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from api.services import EndpointSlice

TTL = 30.0


def _rv(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


@dataclass
class _Pending:
    written: dict[str, tuple[int, float]] = field(default_factory=dict)  # slice name -> (rv, when)
    deleted: dict[str, tuple[str, float]] = field(default_factory=dict)  # slice name -> (uid, when)


class SliceTracker:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic, ttl: float = TTL) -> None:
        self._clock = clock
        self._ttl = ttl
        self._pending: dict[str, _Pending] = {}

    def wrote(self, key: str, stored: EndpointSlice) -> None:
        """After a create or update: `stored` is the server's answer."""
        p = self._pending.setdefault(key, _Pending())
        p.written[stored.metadata.name or ""] = (_rv(stored.metadata.resource_version), self._clock())

    def deleted(self, key: str, slice_: EndpointSlice) -> None:
        p = self._pending.setdefault(key, _Pending())
        p.written.pop(slice_.metadata.name or "", None)
        p.deleted[slice_.metadata.name or ""] = (slice_.metadata.uid or "", self._clock())

    def observed_deletion(self, key: str, slice_: EndpointSlice) -> None:
        """The cache saw the slice go: nothing written to it is still to come."""
        p = self._pending.get(key)
        if p is not None:
            p.written.pop(slice_.metadata.name or "", None)
            p.deleted.pop(slice_.metadata.name or "", None)

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)

    def stale(self, key: str, cached: Iterable[EndpointSlice]) -> bool:
        """Does the cache (the Service's slices in it) still miss one of our writes?"""
        p = self._pending.get(key)
        if p is None:
            return False
        now = self._clock()
        by_name = {s.metadata.name or "": s for s in cached}
        for name, (rv, at) in list(p.written.items()):
            seen = by_name.get(name)
            if (seen is not None and _rv(seen.metadata.resource_version) >= rv) or now - at > self._ttl:
                del p.written[name]
        for name, (uid, at) in list(p.deleted.items()):
            seen = by_name.get(name)
            if seen is None or seen.metadata.uid != uid or now - at > self._ttl:
                del p.deleted[name]
        if not p.written and not p.deleted:
            del self._pending[key]
            return False
        return True
