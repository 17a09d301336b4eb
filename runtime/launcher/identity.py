"""The last steps before exec: user and groups, capabilities, no_new_privs, signals.

Order matters: the capability bounding set can only be cut while we still hold
CAP_SETPCAP (so before setuid), and setuid to a non-root user clears the effective and
permitted sets by itself, which is what Docker gives a non-root container process.
"""

from __future__ import annotations

import os
import signal
from typing import NamedTuple

from runtime import syscalls as sc

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class User(NamedTuple):
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def _table(path: str) -> list[list[str]]:
    try:
        with open(path) as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def resolve_user(spec: str, *, etc: str = "/etc") -> User:
    """``""``, ``uid``, ``name``, ``uid:gid`` or ``name:group``, looked up in the rootfs's
    /etc/passwd and /etc/group (as Docker does: a numeric uid need not exist there)."""
    user_part, _, group_part = spec.partition(":")
    passwd = [e for e in _table(f"{etc}/passwd") if len(e) >= 7]
    groups = [e for e in _table(f"{etc}/group") if len(e) >= 3]
    uid, gid, home, name = 0, 0, "/", "root"
    if user_part:
        entry = next((e for e in passwd if e[0] == user_part or (user_part.isdigit() and e[2] == user_part)),
                     None)
        if entry is not None:
            name, uid, gid, home = entry[0], int(entry[2]), int(entry[3]), entry[5] or "/"
        elif user_part.isdigit():
            uid, name = int(user_part), ""
        else:
            raise OSError(2, f"user {user_part!r} not found in /etc/passwd")
    elif passwd:
        entry = next((e for e in passwd if e[2] == "0"), None)
        home = entry[5] if entry else "/"
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            match = next((g for g in groups if g[0] == group_part), None)
            if match is None:
                raise OSError(2, f"group {group_part!r} not found in /etc/group")
            gid = int(match[2])
    # Like initgroups(3): the primary group plus every group listing the user.
    extra = {int(g[2]) for g in groups if name and len(g) >= 4 and name in g[3].split(",")}
    return User(uid=uid, gid=gid, groups=tuple(sorted(extra | {gid})), home=home)


def set_user(user: User) -> None:
    os.setgroups(list(user.groups))
    os.setgid(user.gid)
    os.setuid(user.uid)


def drop_capabilities(keep_names: frozenset[str] = sc.DOCKER_DEFAULT_CAPS) -> list[int]:
    """Cut the bounding set to ``keep_names``; returns the numbers kept (for capset after setuid)."""
    keep = sc.cap_numbers(keep_names)
    sc.drop_bounding_set(keep)
    return keep


def limit_root_capabilities(keep: list[int], user: User) -> None:
    """A root process keeps exactly the default set; a non-root one already lost them on setuid."""
    if user.uid == 0:
        sc.capset(keep, keep, keep)


def reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ; ignored dispositions survive exec, so restore them."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def environment(env: dict[str, str], user: User) -> dict[str, str]:
    out = {"PATH": DEFAULT_PATH, "HOME": user.home}
    out.update(env)
    return out
