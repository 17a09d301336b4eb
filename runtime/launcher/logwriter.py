"""CRI log lines: ``<RFC3339Nano> <stdout|stderr> <F|P> <text>``.

The shim owns the container's stdout and stderr pipes and is the only writer of its
log file, so the file outlives the launcher and the runtime. Lines are stamped when the
shim reads them; across the two streams, order is the order of arrival at the shim.
A line longer than ``MAX_LINE`` is split into ``P`` (partial) records ending with an ``F``.

Rotation, like the kubelet's containerLogMaxSize / containerLogMaxFiles (defaults 10Mi
and 5): before a write would take the file past ``max_size``, it is renamed to
``<path>.1`` (``.1`` to ``.2`` and so on first; the oldest beyond ``max_files`` files in
all, current one included, is deleted) and a new file is opened. Records are never
split across files. ``log_files`` lists a log's files oldest first, for readers.
"""

from __future__ import annotations

import os
import time

MAX_LINE = 16 * 1024
DEFAULT_MAX_SIZE = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 5


def rfc3339nano(ns: int) -> str:
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


class LogWriter:
    """Turns raw pipe reads into CRI records appended to one file descriptor."""

    def __init__(self, fd: int, *, path: str | None = None, max_size: int = 0, max_files: int = 0) -> None:
        """``path``, ``max_size`` > 0 and ``max_files`` >= 2 turn rotation on (``fd`` is
        ``path`` opened for appending); otherwise the file grows without bound."""
        self.fd = fd
        self.pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        self.path = path if max_size > 0 and max_files >= 2 else None
        self.max_size, self.max_files = max_size, max_files
        self.size = os.fstat(fd).st_size if self.path else 0

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
            self._emit(out)

    def close_stream(self, stream: str) -> None:
        """EOF on a stream: an unterminated last line is still a full record."""
        rest = self.pending[stream]
        if rest:
            stamp = rfc3339nano(time.time_ns()).encode()
            self._emit(self._records(stamp, stream.encode(), rest, final=True))
        self.pending[stream] = b""

    @staticmethod
    def _records(stamp: bytes, tag: bytes, line: bytes, *, final: bool) -> list[bytes]:
        out = []
        while len(line) > MAX_LINE:
            out.append(b"%s %s P %s\n" % (stamp, tag, line[:MAX_LINE]))
            line = line[MAX_LINE:]
        out.append(b"%s %s %s %s\n" % (stamp, tag, b"F" if final else b"P", line))
        return out

    def _emit(self, records: list[bytes]) -> None:
        """Write whole records, rotating between two of them when the next would not fit."""
        if not self.path:
            self._write(b"".join(records))
            return
        batch: list[bytes] = []
        batch_size = 0
        for record in records:
            if self.size + batch_size > 0 and self.size + batch_size + len(record) > self.max_size:
                if batch:
                    self._write(b"".join(batch))
                    batch, batch_size = [], 0
                self._rotate()
            batch.append(record)
            batch_size += len(record)
        if batch:
            self._write(b"".join(batch))

    def _write(self, data: bytes) -> None:
        self.size += len(data)
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except OSError:
                return  # a full disk must not kill the shim: it still has to record the exit
            view = view[n:]

    def _rotate(self) -> None:
        assert self.path is not None
        try:
            for n in range(self.max_files - 1, 0, -1):
                older = f"{self.path}.{n - 1}" if n > 1 else self.path
                if os.path.exists(older):
                    os.replace(older, f"{self.path}.{n}")  # .max_files-1 is overwritten: dropped
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError:
            return  # keep appending to the file we have rather than lose output
        os.close(self.fd)
        self.fd, self.size = fd, 0


def log_files(path: str) -> list[str]:
    """The files of a (possibly rotated) log, oldest first, the current one last."""
    rotated = []
    n = 1
    while os.path.exists(f"{path}.{n}"):
        rotated.append(f"{path}.{n}")
        n += 1
    return [*reversed(rotated), *([path] if os.path.exists(path) else [])]


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
