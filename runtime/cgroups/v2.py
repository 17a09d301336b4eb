"""cgroup v2 driver: one unified directory ``{root}/{name}``.

Controllers must be enabled in every ancestor's ``cgroup.subtree_control`` before a
leaf can use them; ``create`` does that top-down. On cgroupfs the control files exist
as soon as the directory does; in a tmp-dir fake they are created by our writes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from runtime.cgroups.base import (
    CPU_PERIOD_US,
    Cgroup,
    CgroupError,
    CgroupStats,
    Resources,
    millicpu_to_quota,
    millicpu_to_shares,
    shares_to_weight,
)

CONTROLLERS = ("memory", "cpu", "pids")


class CgroupV2(Cgroup):
    version = 2

    @property
    def path(self) -> Path:
        return self.root / self.name

    def create(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CgroupError(f"failed to create cgroup {self.name} at {self.path}: {e}") from e
        # Enable our controllers from the root down to the leaf's parent.
        available = set(self._read(self.root / "cgroup.controllers").split())
        wanted = [c for c in CONTROLLERS if c in available] if available else []
        parts = self.name.split("/")
        for depth in range(len(parts)):
            parent = self.root.joinpath(*parts[:depth])
            enabled = set(self._read(parent / "cgroup.subtree_control").split())
            missing = [c for c in wanted if c not in enabled]
            if missing:
                self._write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))

    def apply(self, resources: Resources) -> None:
        if resources.memory_limit is not None:
            self._write(self.path / "memory.max", str(resources.memory_limit))
            self._write(self.path / "memory.swap.max", "0")
        if resources.cpu_limit_millis is not None:
            quota = millicpu_to_quota(resources.cpu_limit_millis)
            self._write(self.path / "cpu.max", f"{quota} {CPU_PERIOD_US}")
        if resources.cpu_request_millis is not None:
            weight = shares_to_weight(millicpu_to_shares(resources.cpu_request_millis))
            self._write(self.path / "cpu.weight", str(weight))
        if resources.pids_limit is not None:
            self._write(self.path / "pids.max", str(resources.pids_limit))

    def procs_files(self) -> list[str]:
        return [str(self.path / "cgroup.procs")]

    def pids(self) -> list[int]:
        return [int(p) for p in self._read(self.path / "cgroup.procs").split()]

    def stats(self) -> CgroupStats:
        cpu = self._keyed(self.path / "cpu.stat")
        events = self._keyed(self.path / "memory.events")
        return CgroupStats(
            memory_usage=self._read_int(self.path / "memory.current"),
            cpu_usage_ns=cpu.get("usage_usec", 0) * 1000,
            oom_kills=events.get("oom_kill", 0),
            nr_throttled=cpu.get("nr_throttled", 0),
            pids=self._read_int(self.path / "pids.current"),
        )

    def kill_all(self) -> None:
        if not self.path.exists():
            return
        if (self.path / "cgroup.kill").exists():
            # Kernel >= 5.14 kills the whole subtree atomically.
            self._write(self.path / "cgroup.kill", "1")
            return
        self._write(self.path / "cgroup.freeze", "1")
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        finally:
            self._write(self.path / "cgroup.freeze", "0")

    def remove(self) -> None:
        if not self.path.exists():
            return
        deadline = time.monotonic() + 2.0
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            self._rmdir(self.path)
        except CgroupError:
            raise
        except OSError as e:  # pragma: no cover - _rmdir wraps everything
            raise CgroupError(f"failed to remove cgroup {self.name}: {e}") from e
