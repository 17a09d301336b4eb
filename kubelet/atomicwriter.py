"""Writes a volume's files so that a reader sees the old set or the new set, never a mix
(the kubelet's AtomicWriter, for configMap and secret volumes).

Layout of a volume directory after a write:

    ..2026_12_07_10_00_00.123456789/   the payload, one timestamped directory per version
    ..data -> ..2026_12_07_10_00_00.123456789
    key    -> ..data/key               one symlink per top-level path of the payload

Order of a write (each step leaves a consistent volume behind if the next one fails):

1. nothing to do if `..data` already holds exactly this payload (bytes and modes);
2. the new version is written into a fresh timestamped directory;
3. `..data_tmp -> <new dir>` is created, then renamed over `..data`: rename(2) swaps the
   symlink atomically, so every path through `..data` flips at once;
4. the user-visible symlinks of new top-level paths are created, those of paths that are
   gone are removed;
5. the old timestamped directory is removed (and any a crash left behind).

A container that bind-mounted one file (`subPath`) holds that file's inode, in the old
version's directory: it keeps the old content after an update, as in Kubernetes.

Invariants: payload paths are relative, without `..` elements and not starting with `..`
(validation checks this; `write` refuses anything else); names starting with `..` are the
writer's own.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

DATA = "..data"
_DATA_TMP = "..data_tmp"


class WriteError(Exception):
    """The payload could not be written; the volume still holds its previous version."""


@dataclass(frozen=True, slots=True)
class File:
    data: bytes
    mode: int


Payload = dict[str, File]


def check_path(path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or path.startswith("..") or "" in parts:
        raise WriteError(f"invalid path {path!r} in a volume payload")


def _stamp(now: float) -> str:
    """`..2026_12_07_10_00_00.123456789`: Kubernetes' timestamped directory name (UTC)."""
    whole = int(now)
    return time.strftime("..%Y_%m_%d_%H_%M_%S", time.gmtime(whole)) + f".{int((now - whole) * 1e9):09d}"


def current(volume: Path) -> Payload | None:
    """What `..data` holds now, or None if the volume was never written."""
    target = volume / DATA
    if not target.is_dir():
        return None
    out: Payload = {}
    for dirpath, _dirs, files in os.walk(target, followlinks=False):
        for name in files:
            full = Path(dirpath) / name
            rel = str(full.relative_to(target))
            out[rel] = File(full.read_bytes(), full.stat().st_mode & 0o7777)
    return out


def write(volume: Path, payload: Payload, *, now: float | None = None) -> bool:
    """Make `volume` hold exactly `payload`; True if anything changed (see the module doc)."""
    for path in payload:
        check_path(path)
    volume.mkdir(parents=True, exist_ok=True)
    try:
        if current(volume) == payload:
            return False
        stamp = _stamp(time.time() if now is None else now)
        new_dir = volume / stamp
        n = 0
        while new_dir.exists():  # two writes within the same nanosecond: never reuse a version
            n += 1
            new_dir = volume / f"{stamp}{n}"
        new_dir.mkdir(mode=0o755)
        os.chmod(new_dir, 0o755)
        for path, f in payload.items():
            full = new_dir / path
            full.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, f.data)
                os.fchmod(fd, f.mode)
            finally:
                os.close(fd)
        tmp = volume / _DATA_TMP
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(new_dir.name, tmp)
        os.rename(tmp, volume / DATA)
        wanted = {path.split("/", 1)[0] for path in payload}
        for top in wanted:
            link = volume / top
            if not link.is_symlink():
                os.symlink(f"{DATA}/{top}", link)
        for entry in os.listdir(volume):
            if entry.startswith("..") or entry in wanted:
                continue
            gone = volume / entry
            if gone.is_symlink():
                gone.unlink()
        for entry in os.listdir(volume):  # the old version, and any a crash left behind
            if entry.startswith("..") and entry not in (DATA, new_dir.name) and (volume / entry).is_dir() \
                    and not (volume / entry).is_symlink():
                shutil.rmtree(volume / entry, ignore_errors=True)
    except OSError as e:
        raise WriteError(f"failed to write volume {volume}: {e}") from e
    return True
