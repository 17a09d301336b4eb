"""CRI log lines: ``<RFC3339Nano> <stdout|stderr> <F|P> <text>``.

The shim owns the container's stdout and stderr pipes and is the only writer of its
log file, so the file outlives the launcher and the runtime. Lines are stamped when the
shim reads them; across the two streams, order is the order of arrival at the shim.
A line longer than ``MAX_LINE`` is split into ``P`` (partial) records ending with an ``F``.
"""

from __future__ import annotations

import os
import time

MAX_LINE = 16 * 1024


def rfc3339nano(ns: int) -> str:
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


class LogWriter:
    """Turns raw pipe reads into CRI records appended to one file descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def feed(self, stream: str, data: bytes) -> None:
        stamp = rfc3339nano(time.time_ns()).encode()
        tag = stream.encode()
        buf = self.pending[stream] + data
        out: list[bytes] = []
        *lines, rest = buf.split(b"\n")
        for line in lines:
            out.extend(self._records(stamp, tag, line, final=True))
        while len(rest) > MAX_LINE:
            out.append(b"%s %s P %s\n" % (stamp, tag, rest[:MAX_LINE]))
            rest = rest[MAX_LINE:]
        self.pending[stream] = rest
        if out:
            self._write(b"".join(out))

    def close_stream(self, stream: str) -> None:
        """EOF on a stream: an unterminated last line is still a full record."""
        rest = self.pending[stream]
        if rest:
            stamp = rfc3339nano(time.time_ns()).encode()
            self._write(b"".join(self._records(stamp, stream.encode(), rest, final=True)))
        self.pending[stream] = b""

    @staticmethod
    def _records(stamp: bytes, tag: bytes, line: bytes, *, final: bool) -> list[bytes]:
        out = []
        while len(line) > MAX_LINE:
            out.append(b"%s %s P %s\n" % (stamp, tag, line[:MAX_LINE]))
            line = line[MAX_LINE:]
        out.append(b"%s %s %s %s\n" % (stamp, tag, b"F" if final else b"P", line))
        return out

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except OSError:
                return  # a full disk must not kill the shim: it still has to record the exit
            view = view[n:]


def parse_line(line: str) -> tuple[str, str, str, str]:
    """(timestamp, stream, tag, text) of one CRI record; raises ValueError when malformed."""
    parts = line.rstrip("\n").split(" ", 3)
    if len(parts) == 3:
        parts.append("")
    if len(parts) != 4:
        raise ValueError(f"not a CRI log line: {line!r}")
    stamp, stream, tag, text = parts
    if stream not in ("stdout", "stderr") or tag not in ("F", "P"):
        raise ValueError(f"not a CRI log line: {line!r}")
    return stamp, stream, tag, text
