"""Read-only lookups in an image's merged view (its layers, top-most first), without mounting it.

Two users:
- COPY's destination must be resolved the way the container will see it: if the
  image has `/lib -> usr/lib` (Debian and Ubuntu do), `COPY x /lib/` must write
  `usr/lib/x` in the new layer, not a real `lib` directory that would shadow the symlink;
- `COPY --from=stage` reads the stage's files as its container would see them.

The merge follows overlayfs, on layers as the store unpacks them (a layer's
`.wh.NAME` is a char 0/0 device NAME, `.wh..wh..opq` is `trusted.overlay.opaque=y`
on its directory): a name is looked up top-most layer first; a whiteout ends the
search (the name is deleted); a non-directory hides every lower layer's entry;
a directory merges with the directories of the same name below it, down to the
first opaque one. Symlinks are followed inside the image root (absolute targets
restart at the image root, `..` stops at it), never on the host.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from runtime.images.errors import ImageError

_MAX_LINKS = 40  # as the kernel's ELOOP limit
OPAQUE_XATTR = "trusted.overlay.opaque"
_GLOB = re.compile(r"[*?\[]")


class ImageFsError(ImageError):
    """A path that cannot be resolved in the image (a symlink loop)."""


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _child(layers: list[Path], rel: str) -> tuple[os.stat_result, list[Path]] | None:
    """The entry `rel` given the layers that make up its parent directory (top-most first):
    its stat (from the top-most layer) and the layers that make it up (one, unless a directory)."""
    top: os.stat_result | None = None
    found: list[Path] = []
    for layer in layers:
        try:
            st = os.lstat(layer / rel)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            break  # a whiteout: deleted here, and everything below is hidden
        if top is not None and not stat.S_ISDIR(st.st_mode):
            break  # a lower non-directory under a directory: hidden, and so is what is below it
        top = top or st
        found.append(layer)
        if not stat.S_ISDIR(st.st_mode) or _opaque(layer / rel):
            break
    return (top, found) if top is not None else None


def _lookup(lowerdirs: list[Path], rel: str) -> tuple[os.stat_result, list[Path]] | None:
    """`rel` (no symlinks followed) in the merged view: its stat and the layers that make it up."""
    layers = list(lowerdirs)
    done: list[str] = []
    entry = None
    for part in _parts(rel):
        if entry is not None and not stat.S_ISDIR(entry[0].st_mode):
            return None  # a path through a non-directory
        done.append(part)
        entry = _child(layers, "/".join(done))
        if entry is None:
            return None
        layers = entry[1]
    return entry


def _lstat(lowerdirs: list[Path], rel: str) -> os.stat_result | None:
    entry = _lookup(lowerdirs, rel)
    return entry[0] if entry else None


def _readlink(lowerdirs: list[Path], rel: str) -> str:
    entry = _lookup(lowerdirs, rel)
    if entry is None or not stat.S_ISLNK(entry[0].st_mode):
        raise ImageFsError(f"{rel} is not a symlink")
    return os.readlink(entry[1][0] / rel)


def resolve(lowerdirs: list[Path], path: str) -> str:
    """The absolute path `path` refers to inside the image, all symlinks followed."""
    todo = _parts(path)
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
            todo = _parts(target) + todo
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


def exists(lowerdirs: list[Path], path: str) -> bool:
    """Whether `path` (already resolved) names anything in the image."""
    rel = posixpath.normpath(path).strip("/")
    return rel in ("", ".") or _lstat(lowerdirs, rel) is not None


def _names(layers: list[Path], rel: str) -> list[str]:
    """Visible names in the directory `rel` made of `layers`, sorted."""
    names: set[str] = set()
    for layer in layers:
        try:
            names.update(os.listdir(layer / rel if rel else layer))
        except OSError:
            continue
    return sorted(n for n in names if _child(layers, f"{rel}/{n}" if rel else n) is not None)


def listdir(lowerdirs: list[Path], path: str) -> list[str]:
    """Names in the directory `path` (already resolved) of the image, sorted; [] if not a directory."""
    rel = posixpath.normpath(path).strip("/")
    if rel in ("", "."):
        return _names(list(lowerdirs), "")
    entry = _lookup(lowerdirs, rel)
    if entry is None or not stat.S_ISDIR(entry[0].st_mode):
        return []
    return _names(entry[1], rel)


def walk(lowerdirs: list[Path], path: str) -> Iterator[tuple[str, Path]]:
    """(path relative to `path`, the file on disk that shows there) for `path` (already resolved)
    and, if it is a directory, everything below it, parents first, sorted, whiteouts honoured.
    Symlinks below `path` are yielded as symlinks, never followed."""
    rel = posixpath.normpath(path).strip("/")
    if rel in ("", "."):
        if not lowerdirs:
            return
        layers, rel = list(lowerdirs), ""
    else:
        entry = _lookup(lowerdirs, rel)
        if entry is None:
            return
        layers = entry[1]
        if not stat.S_ISDIR(entry[0].st_mode):
            yield "", layers[0] / rel
            return
    yield "", layers[0] / rel if rel else layers[0]
    yield from _walk_dir(layers, rel, "")


def _walk_dir(layers: list[Path], rel: str, below: str) -> Iterator[tuple[str, Path]]:
    for name in _names(layers, rel):
        child_rel = f"{rel}/{name}" if rel else name
        child_below = f"{below}/{name}" if below else name
        entry = _child(layers, child_rel)
        if entry is None:
            continue
        st, child_layers = entry
        yield child_below, child_layers[0] / child_rel
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(child_layers, child_rel, child_below)


def glob(lowerdirs: list[Path], pattern: str) -> list[str]:
    """Absolute paths in the image matching `pattern` (relative patterns start at the root):
    `*`, `?` and `[...]` match within one path component, as in the build context."""
    matches = ["/"]
    for part in _parts(pattern):
        nxt: list[str] = []
        for base in matches:
            if part == "..":
                nxt.append(posixpath.dirname(base.rstrip("/")) or "/")
            elif _GLOB.search(part):
                names = listdir(lowerdirs, resolve(lowerdirs, base))
                nxt.extend(posixpath.join(base, n) for n in names if fnmatch.fnmatchcase(n, part))
            else:
                nxt.append(posixpath.join(base, part))
        matches = nxt
    return sorted(m for m in matches if exists(lowerdirs, resolve(lowerdirs, m)))
