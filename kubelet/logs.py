"""Reading CRI-format container logs (`<RFC3339Nano> <stdout|stderr> <F|P> <text>`) as kubectl shows them.

`select_lines` is pure (tail, since, timestamps over parsed records); `follow_log` streams a
file as it grows until `done()` says the container has exited and the file is drained.
Partial records (`P`) are joined with the record that completes them, so a long line
comes out whole.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True, slots=True)
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    since_seconds: float | None = None
    timestamps: bool = False
    limit_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Record:
    stamp: str
    stream: str
    text: bytes  # without the trailing newline


def parse_time(stamp: str) -> float:
    """Seconds since the epoch of an RFC3339Nano stamp (nanoseconds truncated to microseconds)."""
    main, _, frac = stamp.rstrip("Z").partition(".")
    base = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


def parse_records(data: bytes) -> tuple[list[Record], bytes]:
    """Whole records in `data`, and the unparsed rest (an incomplete last line or a pending P)."""
    out: list[Record] = []
    partial: dict[str, bytes] = {}
    consumed = 0
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        line = data[pos:nl]
        pos = nl + 1
        fields = line.split(b" ", 3)
        if len(fields) < 3:
            consumed = pos
            continue
        stamp, stream, tag = (f.decode(errors="replace") for f in fields[:3])
        text = fields[3] if len(fields) > 3 else b""
        if tag == "P":
            partial[stream] = partial.get(stream, b"") + text
            continue
        out.append(Record(stamp, stream, partial.pop(stream, b"") + text))
        if not partial:
            consumed = pos
    return out, data[consumed:]


def render(records: Iterable[Record], *, timestamps: bool) -> bytes:
    return b"".join((r.stamp.encode() + b" " if timestamps else b"") + r.text + b"\n" for r in records)


def select_lines(records: list[Record], opts: LogOptions, *, now: float) -> list[Record]:
    if opts.since_seconds is not None:
        cutoff = now - opts.since_seconds
        records = [r for r in records if parse_time(r.stamp) >= cutoff]
    if opts.tail_lines is not None:
        records = records[-opts.tail_lines:] if opts.tail_lines > 0 else []
    return records


async def follow_log(path: Path, opts: LogOptions, *, done: Callable[[], bool], now: float,
                     poll: float = 0.1) -> AsyncIterator[bytes]:
    """The selected part of the log, then (with follow) what is appended until `done()`.

    Like the kubelet, it reads the current file only (not the rotated ones), and a follower
    survives rotation: when the path names a new file, it drains the old one and goes on
    from the start of the new one (the runtime never splits a record across files)."""
    f = _open(path)
    try:
        data = f.read() if f is not None else b""
        records, pending = parse_records(data)
        sent = 0
        first = render(select_lines(records, opts, now=now), timestamps=opts.timestamps)
        if opts.limit_bytes is not None:
            first = first[: opts.limit_bytes]
        if first:
            sent += len(first)
            yield first
        if not opts.follow:
            return
        while True:
            finished = done()
            chunk = f.read() if f is not None else b""
            if not chunk and _rotated(path, f):
                if f is not None:
                    f.close()
                f, pending = _open(path), b""
                continue
            if chunk:
                records, pending = parse_records(pending + chunk)
                out = render(records, timestamps=opts.timestamps)
                if opts.limit_bytes is not None:
                    out = out[: max(0, opts.limit_bytes - sent)]
                    if not out:
                        return
                if out:
                    sent += len(out)
                    yield out
                continue
            if finished:
                return
            await asyncio.sleep(poll)
    finally:
        if f is not None:
            f.close()


def _open(path: Path) -> BinaryIO | None:
    """The log file, opened for reading (small local reads, kept synchronous on purpose)."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


def _rotated(path: Path, f: BinaryIO | None) -> bool:
    """Whether `path` now names another file than `f` (the log was rotated, or appeared)."""
    try:
        current = os.stat(path).st_ino
    except FileNotFoundError:
        return False
    return f is None or os.fstat(f.fileno()).st_ino != current
