"""Resolve `USER`/`--chown` specs ("name", "uid", "name:group", "uid:gid") against an image.

Names are looked up in the image's own /etc/passwd and /etc/group (never the
host's), read from the top-most layer that has the file, as the merged rootfs
would show it.
"""

from __future__ import annotations

from pathlib import Path

from runtime.images.errors import ImageError


class UserError(ImageError):
    """A user or group name the image does not define."""


def _read_db(layers: list[Path], name: str) -> list[list[str]]:
    for layer in layers:  # top-most first
        path = layer / "etc" / name
        if path.is_symlink() or not path.is_file():
            continue
        return [line.split(":") for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return []


def resolve_user(layers: list[Path], spec: str) -> tuple[int, int]:
    """(uid, gid) for `spec` in the image made of `layers` (top-most first). Empty spec is root."""
    if not spec:
        return 0, 0
    user, _, group = spec.partition(":")
    passwd = _read_db(layers, "passwd")
    if user.isdigit():
        uid = int(user)
        gid = next((int(e[3]) for e in passwd if len(e) > 3 and e[2] == user and e[3].isdigit()), uid)
    else:
        entry = next((e for e in passwd if e[0] == user and len(e) > 3), None)
        if entry is None:
            raise UserError(f"unable to find user {user}: no matching entries in passwd file")
        uid, gid = int(entry[2]), int(entry[3])
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            groups = _read_db(layers, "group")
            g = next((e for e in groups if e[0] == group and len(e) > 2), None)
            if g is None:
                raise UserError(f"unable to find group {group}: no matching entries in group file")
            gid = int(g[2])
    return uid, gid
