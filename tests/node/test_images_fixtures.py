"""Shared fixtures and helpers for the image and build tests (no tests here).

Everything made is named with the `kltest` prefix and removed afterwards.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.images.store import ImageStore

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(
    not IS_ROOT, reason="needs root: chown to image owners, whiteout device nodes, trusted.* xattrs, mounts"
)


@pytest.fixture
def kltest_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kltest-images-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def store(kltest_dir: Path) -> ImageStore:
    return ImageStore(kltest_dir / "store")


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path below root with (mode, size, mtime_ns): to prove nothing changed.

    Directory mtimes are left out: staging a temp dir and removing it bumps its
    parent's mtime without changing anything in it.
    """
    out: dict[str, tuple[int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            out[path] = (st.st_mode, st.st_size, 0 if stat.S_ISDIR(st.st_mode) else st.st_mtime_ns)
    return out


def make_tar(entries: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]]) -> bytes:
    """A tar archive of the given members (with file content where given)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            if isinstance(entry, tuple):
                info, data = entry
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(entry)
    return buf.getvalue()


def member(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    *,
    link: str = "",
    major: int = 0,
    minor: int = 0,
    mode: int = 0o644,
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.devmajor, info.devminor = major, minor
    info.mode = 0o755 if kind == tarfile.DIRTYPE and mode == 0o644 else mode
    return info
