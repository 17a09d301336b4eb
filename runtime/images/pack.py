"""Directory -> layer tarball (gzip), the inverse of unpack.

Entries are written in sorted order with numeric owners only (no host user
names), so packing the same tree twice gives the same bytes and digest; gzip's
header timestamp is fixed at 0 for the same reason. With `overlay_upper=True`
the source is an overlayfs upper dir and its whiteouts are converted back to
the OCI form: a char 0/0 device NAME becomes an empty `.wh.NAME`, a directory
with `trusted.overlay.opaque=y` gains a `.wh..wh..opq` entry.

`pack_layer` returns both digests a layer has: of the gzip blob (what manifests
and registries address) and of the uncompressed tar (the config's diff_id).
"""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from runtime.images.digest import HashingWriter
from runtime.images.errors import ImageError
from runtime.images.unpack import OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX


class PackError(ImageError):
    """A directory that cannot be packed into a layer."""


@dataclass(frozen=True)
class PackedLayer:
    digest: str  # of the compressed blob
    size: int
    diff_id: str  # of the uncompressed tar


def pack_layer(src: Path, out: BinaryIO, *, overlay_upper: bool = False) -> PackedLayer:
    """Write `src` as a gzip-compressed layer tar to `out`."""
    blob = HashingWriter(out)
    try:
        with gzip.GzipFile(filename="", fileobj=blob, mode="wb", mtime=0, compresslevel=6) as gz:
            raw = HashingWriter(gz)  # type: ignore[arg-type]
            with tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                _add_tree(tar, src, overlay_upper=overlay_upper)
    except OSError as err:
        raise PackError(f"failed to pack layer from {src}: {err}") from err
    blob.flush()
    return PackedLayer(digest=blob.digest, size=blob.size, diff_id=raw.digest)


def _add_tree(tar: tarfile.TarFile, src: Path, *, overlay_upper: bool) -> None:
    seen_inodes: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, src)
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            arcname = name if rel_dir == "." else f"{rel_dir}/{name}"
            st = os.lstat(path)
            if overlay_upper and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                marker = f"{os.path.dirname(arcname)}/{WHITEOUT_PREFIX}{name}".lstrip("/")
                tar.addfile(_info(marker, st, reg=True))
                continue
            key = (st.st_dev, st.st_ino)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and key in seen_inodes:
                info = _info(arcname, st)
                info.type = tarfile.LNKTYPE
                info.linkname = seen_inodes[key]
                info.size = 0
                tar.addfile(info)
                continue
            info = _info(arcname, st)
            if stat.S_ISREG(st.st_mode):
                seen_inodes[key] = arcname
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                if stat.S_ISLNK(st.st_mode):
                    info.linkname = os.readlink(path)
                tar.addfile(info)
            if stat.S_ISDIR(st.st_mode) and overlay_upper and _is_opaque(path):
                tar.addfile(_info(f"{arcname}/{OPAQUE_MARKER}", st, reg=True))


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _info(arcname: str, st: os.stat_result, *, reg: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    if reg:  # a synthesized whiteout marker: an empty file
        info.type, info.mode, info.size = tarfile.REGTYPE, 0o644, 0
        return info
    info.mode = stat.S_IMODE(st.st_mode)
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type = tarfile.SYMTYPE
    elif stat.S_ISREG(mode):
        info.type, info.size = tarfile.REGTYPE, st.st_size
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    else:
        raise PackError(f"cannot pack {arcname}: unsupported file type")
    return info
