"""CRI log records and size-based rotation of container logs (runtime/launcher/logwriter.py)."""

from __future__ import annotations

import os
from pathlib import Path

from runtime.launcher.logwriter import LogWriter, log_files, parse_line


def _writer(path: Path, **kwargs: int) -> LogWriter:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    return LogWriter(fd, path=str(path), **kwargs)


def _texts(path: Path) -> list[str]:
    out = []
    for name in log_files(str(path)):
        out += [parse_line(line)[3] for line in Path(name).read_text().splitlines()]
    return out


def test_rotation_keeps_max_files_and_whole_records(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    w = _writer(log, max_size=1000, max_files=3)
    for i in range(200):
        w.feed("stdout", f"line {i:03d} {'x' * 20}\n".encode())
    w.close_stream("stdout")
    files = log_files(str(log))
    assert files == [f"{log}.2", f"{log}.1", str(log)]
    assert not Path(f"{log}.3").exists()
    assert all(os.path.getsize(f) <= 1000 for f in files)
    texts = _texts(log)
    # The newest lines survive, in order, each whole; the oldest were dropped.
    numbers = [int(t.split()[1]) for t in texts]
    assert numbers == list(range(numbers[0], 200))
    assert numbers[0] > 100 and len(numbers) >= 30  # three files of ~15 records each
    assert all(t.endswith("x" * 20) for t in texts)


def test_no_rotation_without_limits(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    w = _writer(log)
    for i in range(100):
        w.feed("stderr", f"{i}\n".encode())
    assert log_files(str(log)) == [str(log)]
    assert _texts(log) == [str(i) for i in range(100)]


def test_rotation_continues_from_an_existing_file_size(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    log.write_text("2026-11-28T00:00:00.000000000Z stdout F " + "y" * 950 + "\n")
    w = _writer(log, max_size=1000, max_files=2)
    w.feed("stdout", b"after restart\n")
    assert log_files(str(log)) == [f"{log}.1", str(log)]
    assert _texts(log)[-1] == "after restart"
