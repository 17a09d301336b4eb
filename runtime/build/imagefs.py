"""Read-only path lookups in an image's merged view, without mounting it.

COPY's destination must be resolved the way the container will see it: if the
image has `/lib -> usr/lib` (Debian and Ubuntu do), `COPY x /lib/` must write
`usr/lib/x` in the new layer, not a real `lib` directory that would shadow
the symlink. Lookups go top-most layer first; a whiteout (char 0/0) ends the
search (the name is deleted), symlinks are followed inside the image root
(absolute targets restart at the image root, `..` stops at it), never on the host.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path

from runtime.images.errors import ImageError

_MAX_LINKS = 40  # as the kernel's ELOOP limit


class ImageFsError(ImageError):
    """A path that cannot be resolved in the image (a symlink loop)."""


def _lstat(lowerdirs: list[Path], rel: str) -> os.stat_result | None:
    for layer in lowerdirs:
        try:
            st = os.lstat(layer / rel)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return None  # a whiteout: deleted in this layer
        return st
    return None


def _readlink(lowerdirs: list[Path], rel: str) -> str:
    for layer in lowerdirs:
        if os.path.islink(layer / rel):
            return os.readlink(layer / rel)
    raise ImageFsError(f"{rel} is not a symlink")


def resolve(lowerdirs: list[Path], path: str) -> str:
    """The absolute path `path` refers to inside the image, all symlinks followed."""
    todo = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        rel = "/".join([*done, part])
        st = _lstat(lowerdirs, rel)
        if st is not None and stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise ImageFsError(f"too many levels of symbolic links resolving {path}")
            target = _readlink(lowerdirs, rel)
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p not in ("", ".")] + todo
            continue
        done.append(part)
    return "/" + "/".join(done)


def is_dir(lowerdirs: list[Path], path: str) -> bool:
    """Whether `path` (already resolved) is a directory in the image."""
    rel = posixpath.normpath(path).strip("/")
    if rel in ("", "."):
        return True
    st = _lstat(lowerdirs, rel)
    return st is not None and stat.S_ISDIR(st.st_mode)
