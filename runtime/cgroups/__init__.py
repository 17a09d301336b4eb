"""cgroups: one interface (``Cgroup``), a v1 and a v2 driver, chosen by ``detect``.

    cg = open_cgroup("/sys/fs/cgroup", "kubelite/pod-x/ctr")   # picks the driver
    cg.create(); cg.apply(Resources(memory_limit=64 << 20)); cg.add_task(pid)
    cg.stats(); cg.kill_all(); cg.remove()
"""

from __future__ import annotations

import os
from pathlib import Path

from runtime.cgroups.base import (
    Cgroup,
    CgroupError,
    CgroupStats,
    Resources,
    millicpu_to_quota,
    millicpu_to_shares,
    shares_to_weight,
)
from runtime.cgroups.v1 import CgroupV1
from runtime.cgroups.v2 import CgroupV2

CGROUP2_SUPER_MAGIC = 0x63677270

__all__ = [
    "Cgroup",
    "CgroupError",
    "CgroupStats",
    "CgroupV1",
    "CgroupV2",
    "Resources",
    "detect_version",
    "millicpu_to_quota",
    "millicpu_to_shares",
    "open_cgroup",
    "shares_to_weight",
]


def detect_version(root: Path | str) -> int:
    """2 when ``root`` is a cgroup2 mount (``stat -fc %T`` says cgroup2fs), else 1.

    A tmp dir laid out like cgroupfs counts as v2 when it holds a root
    ``cgroup.controllers`` file and no per-controller directories (v1's signature).
    """
    root = Path(root)
    if _statfs_type(root) == CGROUP2_SUPER_MAGIC:
        return 2
    if (root / "cgroup.controllers").exists() and not (root / "memory").is_dir():
        return 2
    return 1


def _statfs_type(path: Path) -> int | None:
    """f_type from statfs(2); os.statvfs does not expose it, so read it through ctypes."""
    import ctypes

    class _StatFs(ctypes.Structure):
        _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 120)]

    libc = ctypes.CDLL(None, use_errno=True)
    buf = _StatFs()
    if libc.statfs(os.fsencode(str(path)), ctypes.byref(buf)) != 0:
        return None
    return int(buf.f_type)


def open_cgroup(root: Path | str, name: str, *, version: int | None = None) -> Cgroup:
    """A driver for cgroup ``name`` under ``root``; the version is detected unless given."""
    chosen = version if version is not None else detect_version(root)
    return CgroupV2(root, name) if chosen == 2 else CgroupV1(root, name)
