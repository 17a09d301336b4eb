"""Safe layer extraction: a tar can describe any file system, we write only inside one dir.

Invariants, whatever the archive holds:
- nothing is created, changed or removed outside the destination directory;
- member names that are absolute or contain `..` are refused, as are members
  whose parent path passes through a symlink (the classic "write through a
  symlink planted by an earlier member" escape);
- symlinks whose relative target climbs above the layer root are refused.
  Absolute targets are allowed: they are resolved inside the container's root
  at run time (real images are full of them, /etc/alternatives for one), and
  this module never follows a symlink itself (O_NOFOLLOW, lchown, lstat);
- hardlinks must point at a regular file already extracted into this layer;
- device nodes are refused, except char 0/0, which overlayfs reads as a whiteout.
Extended attributes from PAX headers are restored only for `user.*` and
`security.capability` (file capabilities, e.g. ping's); `trusted.*` ones are
dropped, since `trusted.overlay.*` would let a layer steer overlayfs itself.
Whiteouts are converted to the overlayfs form: `.wh.NAME` becomes a char 0/0
device NAME, `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory.

A refused member aborts the whole layer: `unpack_layer` extracts into a private
temporary directory and renames it into place only on success, so a layer dir
that exists is always complete.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import uuid
from pathlib import Path
from typing import BinaryIO

from runtime.images.errors import ImageError

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_COPY_CHUNK = 1 << 20
_PAX_XATTR = "SCHILY.xattr."


class UnpackError(ImageError):
    """A layer that cannot be, or must not be, extracted."""


class _Refused(Exception):
    """Internal: why a member is refused; wrapped into UnpackError with the label."""


def unpack_layer(blob: BinaryIO, dest: Path, *, label: str) -> None:
    """Extract the layer tar read from `blob` (gzip or plain) into `dest`, which must not exist.

    `label` names the layer in errors (its digest). On failure nothing is left behind.
    """
    tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(mode=0o755)
    try:
        extract_tar(blob, tmp, label=label, whiteouts=True)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def extract_tar(fileobj: BinaryIO, root: Path, *, label: str, whiteouts: bool) -> None:
    """Extract a tar stream into the existing directory `root` under the invariants above."""
    dir_meta: list[tuple[Path, tarfile.TarInfo]] = []
    name = "<archive>"
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
            for member in tar:
                name = member.name
                dir_entry = _extract_member(tar, member, root, whiteouts=whiteouts)
                if dir_entry is not None:
                    dir_meta.append((dir_entry, member))
        # Directory modes and times last: extracting children would bump mtimes.
        # A later member may have replaced the directory (say, by a symlink to
        # /etc): only apply to what is still a directory, or chmod would follow it.
        for path, member in reversed(dir_meta):
            if stat.S_ISDIR(os.lstat(path).st_mode):
                _apply_meta(path, member)
    except _Refused as err:
        raise UnpackError(f"failed to unpack layer {label}: member {name!r} {err}") from None
    except (tarfile.TarError, OSError, EOFError) as err:
        raise UnpackError(f"failed to unpack layer {label}: at member {name!r}: {err}") from err


def _member_parts(name: str) -> list[str]:
    if name.startswith("/"):
        raise _Refused("has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _Refused("escapes the layer directory")
    return parts


def _parent_dir(root: Path, parts: list[str], *, create: bool) -> Path:
    """Walk `parts` below root without following symlinks, creating missing dirs if asked."""
    cur = root
    for part in parts:
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            if not create:
                raise _Refused(f"refers to missing path {part!r}") from None
            os.mkdir(cur, 0o755)
            continue
        if stat.S_ISLNK(st.st_mode):
            raise _Refused(f"passes through symlink {'/'.join(parts)!r}, which could lead outside")
        if not stat.S_ISDIR(st.st_mode):
            raise _Refused(f"has a parent {part!r} that is not a directory")
    return cur


def _remove(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _check_symlink_target(parts: list[str], target: str) -> None:
    if target.startswith("/"):
        return  # resolved inside the container root at run time; never followed here
    depth = len(parts) - 1  # directory depth of the link itself
    for piece in target.split("/"):
        if piece == "..":
            depth -= 1
            if depth < 0:
                raise _Refused(f"is a symlink to {target!r}, which escapes the layer directory")
        elif piece not in ("", "."):
            depth += 1


def _extract_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path, *, whiteouts: bool
) -> Path | None:
    """Extract one member; return the path if it is a directory whose metadata is applied later."""
    parts = _member_parts(member.name)
    if not parts:
        return None  # the archive's own root "./": the layer dir already exists
    base = parts[-1]
    if whiteouts and base.startswith(WHITEOUT_PREFIX):
        parent = _parent_dir(root, parts[:-1], create=True)
        if base == OPAQUE_MARKER:
            os.setxattr(parent, OPAQUE_XATTR, b"y", follow_symlinks=False)
        elif not base.startswith(OPAQUE_MARKER[:8]):  # other .wh..wh.* are aufs internals
            hidden = base[len(WHITEOUT_PREFIX) :]
            if hidden in ("", ".", ".."):
                raise _Refused("is a whiteout of an invalid name")
            _make_whiteout(parent / hidden)
        return None
    parent = _parent_dir(root, parts[:-1], create=True)
    path = parent / base
    if member.isdir():
        try:
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode):
                _remove(path)
                os.mkdir(path, 0o755)
        except FileNotFoundError:
            os.mkdir(path, 0o755)
        return path
    if member.isreg():
        _remove(path)
        src = tar.extractfile(member)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            if src is not None:
                shutil.copyfileobj(src, out, _COPY_CHUNK)
        _apply_meta(path, member)
    elif member.issym():
        _check_symlink_target(parts, member.linkname)
        _remove(path)
        os.symlink(member.linkname, path)
        _apply_meta(path, member)
    elif member.islnk():
        target_parts = _member_parts(member.linkname)
        if not target_parts:
            raise _Refused("is a hardlink to the layer root")
        target = _parent_dir(root, target_parts[:-1], create=False) / target_parts[-1]
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            raise _Refused(f"is a hardlink to {member.linkname!r}, not in this layer") from None
        if not stat.S_ISREG(st.st_mode):
            raise _Refused(f"is a hardlink to {member.linkname!r}, which is not a regular file")
        if target != path:
            _remove(path)
            os.link(target, path, follow_symlinks=False)
    elif member.ischr() or member.isblk():
        if member.ischr() and member.devmajor == 0 and member.devminor == 0 and whiteouts:
            _make_whiteout(path)
        else:
            kind = "character" if member.ischr() else "block"
            raise _Refused(f"is a {kind} device {member.devmajor}:{member.devminor}; devices are refused")
    elif member.isfifo():
        _remove(path)
        os.mkfifo(path, 0o600)
        _apply_meta(path, member)
    else:
        raise _Refused(f"has unsupported tar type {member.type!r}")
    return None


def _make_whiteout(path: Path) -> None:
    _remove(path)
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))


def _apply_meta(path: Path, member: tarfile.TarInfo) -> None:
    # chown before chmod: chown clears set-id bits.
    os.chown(path, member.uid, member.gid, follow_symlinks=False)
    if not member.issym():
        # Not a symlink (we just created it in our private dir), so plain chmod is safe;
        # Linux has no lchmod.
        os.chmod(path, stat.S_IMODE(member.mode))
    for key, value in member.pax_headers.items():
        name = key.removeprefix(_PAX_XATTR)
        if name != key and (name == "security.capability" or name.startswith("user.")):
            # After chown, which clears security.capability. Values are bytes that
            # tarfile decoded with surrogateescape; encoding back restores them exactly.
            os.setxattr(path, name, value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
    os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
