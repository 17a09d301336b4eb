"""The cgroup interface shared by the v1 and v2 drivers.

A ``Cgroup`` names one group (a relative path such as ``kubelite/pod1/abc``) under a
cgroup root that is an argument, so unit tests point it at a tmp dir laid out like
cgroupfs and node tests at ``/sys/fs/cgroup``.

Lifecycle: ``create`` -> ``apply`` -> tasks join (``add_task`` or by writing "0" to
each of ``procs_files()`` from inside the task) -> ``stats`` at any time -> ``kill_all``
-> ``remove``. ``remove`` and ``kill_all`` are idempotent.
"""

from __future__ import annotations

import abc
import os
import time
from dataclasses import dataclass
from pathlib import Path


class CgroupError(Exception):
    """A cgroup operation failed; the message names the cgroup and the step, the cause is chained."""


# Kubernetes' conversions (pkg/kubelet/cm/helpers_linux.go), re-derived from their documentation.
CPU_PERIOD_US = 100_000
MIN_SHARES = 2
MAX_SHARES = 262_144


def millicpu_to_shares(millicpu: int) -> int:
    return max(MIN_SHARES, min(MAX_SHARES, millicpu * 1024 // 1000))


def millicpu_to_quota(millicpu: int, period_us: int = CPU_PERIOD_US) -> int:
    # The kernel refuses quotas under 1 ms.
    return max(1000, millicpu * period_us // 1000)


def shares_to_weight(shares: int) -> int:
    """cgroup v2 cpu.weight (1..10000) from v1 shares (2..262144), linearly, as Kubernetes does."""
    return 1 + ((shares - MIN_SHARES) * 9999) // (MAX_SHARES - MIN_SHARES)


@dataclass(frozen=True)
class Resources:
    """Limits for one container; ``None`` means unlimited / kernel default."""

    memory_limit: int | None = None  # bytes
    cpu_limit_millis: int | None = None  # -> CFS quota
    cpu_request_millis: int | None = None  # -> shares (v1) / weight (v2)
    pids_limit: int | None = None


@dataclass(frozen=True)
class CgroupStats:
    memory_usage: int  # bytes
    cpu_usage_ns: int
    oom_kills: int  # OOM-killer kills inside this group
    nr_throttled: int  # CFS periods in which the group was throttled
    pids: int


class Cgroup(abc.ABC):
    """One cgroup, whatever the hierarchy version."""

    version: int

    def __init__(self, root: Path | str, name: str) -> None:
        self.root = Path(root)
        self.name = name.strip("/")

    @abc.abstractmethod
    def create(self) -> None: ...

    @abc.abstractmethod
    def apply(self, resources: Resources) -> None: ...

    @abc.abstractmethod
    def procs_files(self) -> list[str]:
        """Paths of every cgroup.procs a task must be written to in order to join this group."""

    def add_task(self, pid: int) -> None:
        for path in self.procs_files():
            self._write(path, str(pid))

    @abc.abstractmethod
    def pids(self) -> list[int]: ...

    @abc.abstractmethod
    def stats(self) -> CgroupStats: ...

    @abc.abstractmethod
    def kill_all(self) -> None:
        """SIGKILL every process in the group, including ones forked while we kill."""

    @abc.abstractmethod
    def remove(self) -> None: ...

    # helpers ---------------------------------------------------------------

    def _write(self, path: str | Path, value: str) -> None:
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as e:
            raise CgroupError(f"failed to write {value!r} to {path} for cgroup {self.name}: {e}") from e

    @staticmethod
    def _read(path: str | Path, default: str = "") -> str:
        try:
            with open(path) as f:
                return f.read()
        except FileNotFoundError:
            return default

    @staticmethod
    def _read_int(path: str | Path) -> int:
        text = Cgroup._read(path, "0").strip()
        return int(text) if text.isdigit() else 0

    @staticmethod
    def _keyed(path: str | Path) -> dict[str, int]:
        """Parse flat keyed files ("key value" per line) such as cpu.stat or memory.events."""
        out: dict[str, int] = {}
        for line in Cgroup._read(path).splitlines():
            key, _, value = line.partition(" ")
            if value.strip().lstrip("-").isdigit():
                out[key] = int(value)
        return out

    def _rmdir(self, path: Path) -> None:
        """rmdir a cgroup dir, retrying briefly: killed tasks take a moment to leave."""
        deadline = time.monotonic() + 2.0
        while True:
            try:
                os.rmdir(path)
                return
            except FileNotFoundError:
                return
            except OSError as e:
                if time.monotonic() > deadline:
                    raise CgroupError(f"failed to remove cgroup {self.name} at {path}: {e}") from e
                time.sleep(0.01)
