"""etcd storage: the only module in kubelite that talks to etcd.

Objects live at `/registry/{resource}/{namespace}/{name}` (cluster-scoped:
`/registry/{resource}/{name}`) as JSON *without* `metadata.resourceVersion`: the
resourceVersion of an object is the etcd mod revision of its key, injected on read.

Every write is one etcd transaction, so there are no lost updates:
- create:  `create_revision(key) == 0`            -> put      (else KeyExists)
- update:  `mod_revision(key) == expected`         -> put      (else RevisionMismatch)
- delete:  `mod_revision(key) == expected`         -> delete   (else RevisionMismatch)

A write may also *claim* keys (each must be absent; put in the same transaction, else
ClaimTaken naming the taken ones) and *release* keys (deleted in the same transaction): this
is how a Service takes and frees its ClusterIP and NodePorts (apiserver/allocator.py), so two
API servers can never hand out the same one.

aetcd's high-level helpers hide `limit` and `revision` on ranges and the header of a
transaction, so this module speaks the raw gRPC messages through aetcd's stubs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import aetcd
from aetcd import rpc

log = logging.getLogger(__name__)

REGISTRY = "/registry/"
_GRPC_OPTIONS = {
    # A 10,000-pod LIST is tens of MB; gRPC's default limit is 4 MiB.
    "grpc.max_receive_message_length": 512 * 1024 * 1024,
    "grpc.max_send_message_length": 64 * 1024 * 1024,
}


class StorageError(Exception):
    """Base of storage failures; the API server maps each to a Status."""


class KeyExists(StorageError):
    pass


class KeyNotFound(StorageError):
    pass


class RevisionMismatch(StorageError):
    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"{key}: expected revision {expected}, found {actual}")
        self.actual = actual


class ClaimTaken(StorageError):
    """Keys a write claimed already exist (someone else holds them)."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"already claimed: {', '.join(keys)}")
        self.keys = keys


class Compacted(StorageError):
    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} has been compacted (oldest available {compacted + 1})")
        self.compacted = compacted


class Unavailable(StorageError):
    """etcd could not be reached."""


@dataclass(frozen=True, slots=True)
class KV:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change to a key. `value` is empty for deletes; `prev_value` is the value before."""

    key: str
    revision: int
    created: bool
    deleted: bool
    value: bytes
    prev_value: bytes | None


def parse_endpoint(url: str) -> tuple[str, int]:
    """`http://127.0.0.1:2379` -> ("127.0.0.1", 2379)."""
    rest = url.split("://", 1)[-1].rstrip("/")
    host, _, port = rest.rpartition(":")
    if not host:
        return rest, 2379
    return host.strip("[]"), int(port)


def _range_end(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


def _absent(key: bytes) -> Any:
    return rpc.Compare(key=key, target=rpc.Compare.CREATE, result=rpc.Compare.EQUAL, create_revision=0)


def _at(key: bytes, revision: int) -> Any:
    return rpc.Compare(key=key, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL, mod_revision=revision)


def _put(key: bytes, value: bytes) -> Any:
    return rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value))


def _deletes(keys: Sequence[str]) -> list[Any]:
    return [rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k.encode())) for k in keys]


def _ranges(claims: Sequence[tuple[str, bytes]]) -> list[Any]:
    return [rpc.RequestOp(request_range=rpc.RangeRequest(key=c.encode(), keys_only=True)) for c, _ in claims]


class Storage:
    """A thin, typed layer over one aetcd client (one client per event loop)."""

    def __init__(self, endpoint: str, *, timeout: float = 10.0) -> None:
        host, port = parse_endpoint(endpoint)
        self.endpoint = endpoint
        self._client = aetcd.Client(host=host, port=port, timeout=int(timeout) or None,
                                    options=_GRPC_OPTIONS)
        self._timeout = timeout

    async def connect(self) -> None:
        await self._client.connect()

    async def close(self) -> None:
        await self._client.close()

    @property
    def _kv(self) -> Any:
        return self._client.kvstub

    async def _call(self, method: str, request: Any) -> Any:
        await self._client.connect()
        try:
            return await getattr(self._kv, method)(request, timeout=self._timeout)
        except rpc.AioRpcError as err:
            if err.code() in (rpc.StatusCode.UNAVAILABLE, rpc.StatusCode.DEADLINE_EXCEEDED):
                raise Unavailable(f"etcd at {self.endpoint} is unavailable: {err.details()}") from err
            if err.code() == rpc.StatusCode.OUT_OF_RANGE or "compacted" in (err.details() or ""):
                raise Compacted(0, 0) from err
            raise StorageError(f"etcd {method} failed: {err.details()}") from err

    # ------------------------------------------------------------------ reads

    async def current_revision(self) -> int:
        """etcd's current store revision (a one-key range costs one round trip)."""
        resp = await self._call("Range", rpc.RangeRequest(key=b"\0", limit=1, keys_only=True))
        return int(resp.header.revision)

    async def get(self, key: str) -> KV | None:
        resp = await self._call("Range", rpc.RangeRequest(key=key.encode()))
        if not resp.kvs:
            return None
        kv = resp.kvs[0]
        return KV(key, kv.value, kv.mod_revision, kv.create_revision)

    async def changed_since(self, prefix: str, *, revision: int, since: int) -> tuple[int, bool]:
        """At `revision`: how many keys exist under `prefix`, and whether any of them was
        last modified after `since`.

        etcd filters by mod revision only the keys it returns, never the count, so the
        second answer needs a key; `limit=1` keeps it to one (etcd filters before it cuts).
        """
        pfx = prefix.encode()
        req = rpc.RangeRequest(key=pfx, range_end=_range_end(pfx), revision=revision, keys_only=True,
                               min_mod_revision=since + 1, limit=1)
        resp = await self._call("Range", req)
        return int(resp.count), bool(resp.kvs)

    async def list(
        self, prefix: str, *, start: str | None = None, limit: int = 0, revision: int = 0
    ) -> tuple[list[KV], int, bool]:
        """Keys under `prefix` from `start` (inclusive) at `revision` (0: latest).

        Returns (kvs, revision read at, more): `more` says a `limit` cut the range.
        """
        pfx = prefix.encode()
        req = rpc.RangeRequest(key=(start or prefix).encode(), range_end=_range_end(pfx),
                               limit=limit, revision=revision)
        try:
            resp = await self._call("Range", req)
        except Compacted as err:
            raise Compacted(revision, revision) from err
        kvs = [KV(kv.key.decode(), kv.value, kv.mod_revision, kv.create_revision) for kv in resp.kvs]
        return kvs, int(resp.header.revision), bool(resp.more)

    # ------------------------------------------------------------------ writes

    async def create(self, key: str, value: bytes, *, claims: Sequence[tuple[str, bytes]] = ()) -> int:
        """Put `key` (and each claim) only if all are absent; returns the new revision."""
        k = key.encode()
        req = rpc.TxnRequest(
            compare=[_absent(k), *(_absent(c.encode()) for c, _ in claims)],
            success=[_put(k, value), *(_put(c.encode(), v) for c, v in claims)],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k, keys_only=True)),
                     *_ranges(claims)] if claims else [],
        )
        resp = await self._call("Txn", req)
        if not resp.succeeded:
            if not claims or resp.responses[0].response_range.kvs:
                raise KeyExists(key)
            self._raise_claims(claims, resp)
            raise ClaimTaken([])  # the holder let go meanwhile: the caller tries again
        return int(resp.header.revision)

    async def update(self, key: str, value: bytes, *, expected: int, claims: Sequence[tuple[str, bytes]] = (),
                     releases: Sequence[str] = ()) -> int:
        """Put `key` only if its mod revision is `expected` (and each claim is absent), delete
        `releases`; returns the new revision."""
        k = key.encode()
        req = rpc.TxnRequest(
            compare=[_at(k, expected), *(_absent(c.encode()) for c, _ in claims)],
            success=[_put(k, value), *(_put(c.encode(), v) for c, v in claims), *_deletes(releases)],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k)), *_ranges(claims)],
        )
        resp = await self._call("Txn", req)
        if not resp.succeeded:
            self._raise_mismatch(key, expected, resp)
            self._raise_claims(claims, resp)
            raise ClaimTaken([])  # the holder let go meanwhile: the caller tries again
        return int(resp.header.revision)

    async def delete(self, key: str, *, expected: int, releases: Sequence[str] = ()) -> int:
        """Delete `key` (and `releases`) only if its mod revision is `expected`; returns the
        deletion revision."""
        k = key.encode()
        req = rpc.TxnRequest(
            compare=[_at(k, expected)],
            success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k)), *_deletes(releases)],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))],
        )
        resp = await self._call("Txn", req)
        if not resp.succeeded:
            self._raise_mismatch(key, expected, resp)
            raise RevisionMismatch(key, expected, expected)
        return int(resp.header.revision)

    @staticmethod
    def _raise_claims(claims: Sequence[tuple[str, bytes]], resp: Any) -> None:
        taken = [c for (c, _), r in zip(claims, resp.responses[1:], strict=True) if r.response_range.kvs]
        if taken:
            raise ClaimTaken(taken)

    async def keys(self, prefix: str) -> Sequence[str]:
        """Every key under `prefix` (keys only)."""
        pfx = prefix.encode()
        resp = await self._call("Range", rpc.RangeRequest(key=pfx, range_end=_range_end(pfx), keys_only=True))
        return [kv.key.decode() for kv in resp.kvs]

    @staticmethod
    def _raise_mismatch(key: str, expected: int, resp: Any) -> None:
        kvs = resp.responses[0].response_range.kvs if resp.responses else []
        if not kvs:
            raise KeyNotFound(key)
        if int(kvs[0].mod_revision) != expected:
            raise RevisionMismatch(key, expected, int(kvs[0].mod_revision))

    async def compact(self, revision: int) -> None:
        await self._client.connect()
        await self._client.compact(revision)

    # ------------------------------------------------------------------ watch

    async def watch(self, prefix: str, *, start_revision: int, prev_kv: bool = True) -> AsyncIterator[WatchEvent]:
        """Every change under `prefix` from `start_revision` (inclusive), in revision order.

        `prev_kv=False` leaves `prev_value` None: etcd then skips reading each key's previous
        value, which a caller that keeps the previous state itself (the watch cache) never needs.

        Raises Compacted if etcd no longer has `start_revision`, Unavailable if the
        stream breaks; the caller decides whether to resume (from last revision + 1).

        One etcd Watch stream per call, spoken directly: aetcd's watcher hands each event
        through a lock, a callback and a queue, which cost the API server ~40 us of CPU per
        event on top of gRPC's own ~50 us (every create is an event the server receives).
        """
        await self._client.connect()
        pfx = prefix.encode()
        create = rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
            key=pfx, range_end=_range_end(pfx), start_revision=start_revision, prev_kv=prev_kv))
        finished = asyncio.Event()

        async def requests() -> AsyncIterator[Any]:
            yield create
            await finished.wait()  # the request side stays open for as long as we watch

        call = rpc.WatchStub(self._client.channel).Watch(requests())
        try:
            async for resp in call:
                if resp.compact_revision:
                    raise Compacted(start_revision, int(resp.compact_revision))
                if resp.canceled:
                    raise Unavailable(f"etcd cancelled the watch on {prefix}: {resp.cancel_reason}")
                for ev in resp.events:
                    kv = ev.kv
                    deleted = ev.type == rpc.Event.DELETE
                    yield WatchEvent(
                        key=kv.key.decode(),
                        revision=int(kv.mod_revision),
                        created=not deleted and kv.create_revision == kv.mod_revision,
                        deleted=deleted,
                        value=b"" if deleted else kv.value,
                        prev_value=ev.prev_kv.value if ev.HasField("prev_kv") else None,
                    )
            raise Unavailable(f"etcd at {self.endpoint} ended the watch on {prefix}")
        except rpc.AioRpcError as err:
            raise Unavailable(f"etcd watch on {self.endpoint} broke: {err.details()}") from err
        finally:
            finished.set()
            call.cancel()
