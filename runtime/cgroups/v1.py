"""cgroup v1 driver: one directory per controller hierarchy.

Layout: ``{root}/{controller}/{name}`` for memory, cpu, cpuacct, pids and freezer. On
hosts that co-mount ``cpu,cpuacct`` the two paths resolve to one directory, which we
de-duplicate. cpuset is deliberately not joined: a v1 cpuset group refuses tasks until
cpus and mems are copied in, and we set no cpuset limits.
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
)

CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer")


class CgroupV1(Cgroup):
    version = 1

    def _dir(self, controller: str) -> Path:
        return self.root / controller / self.name

    def _dirs(self) -> list[Path]:
        """Existing controller hierarchies, each once even when co-mounted."""
        seen: set[str] = set()
        out: list[Path] = []
        for controller in CONTROLLERS:
            base = self.root / controller
            if not base.is_dir():
                continue
            real = os.path.realpath(base)
            if real in seen:
                continue
            seen.add(real)
            out.append(self._dir(controller))
        return out

    def create(self) -> None:
        for d in self._dirs():
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise CgroupError(f"failed to create cgroup {self.name} at {d}: {e}") from e

    def apply(self, resources: Resources) -> None:
        mem = self._dir("memory")
        if resources.memory_limit is not None:
            self._write(mem / "memory.limit_in_bytes", str(resources.memory_limit))
            # Without this a host with swap would page the container out instead of OOM-killing it.
            if (mem / "memory.memsw.limit_in_bytes").exists():
                self._write(mem / "memory.memsw.limit_in_bytes", str(resources.memory_limit))
        cpu = self._dir("cpu")
        if resources.cpu_limit_millis is not None:
            self._write(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            self._write(cpu / "cpu.cfs_quota_us", str(millicpu_to_quota(resources.cpu_limit_millis)))
        if resources.cpu_request_millis is not None:
            self._write(cpu / "cpu.shares", str(millicpu_to_shares(resources.cpu_request_millis)))
        if resources.pids_limit is not None:
            self._write(self._dir("pids") / "pids.max", str(resources.pids_limit))

    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self._dirs()]

    def pids(self) -> list[int]:
        # The memory hierarchy always exists when we run containers; fall back to any other.
        for d in [self._dir("memory"), *self._dirs()]:
            text = self._read(d / "cgroup.procs", "")
            if (d / "cgroup.procs").exists():
                return [int(p) for p in text.split()]
        return []

    def stats(self) -> CgroupStats:
        oom = self._keyed(self._dir("memory") / "memory.oom_control")
        cpu = self._keyed(self._dir("cpu") / "cpu.stat")
        return CgroupStats(
            memory_usage=self._read_int(self._dir("memory") / "memory.usage_in_bytes"),
            cpu_usage_ns=self._read_int(self._dir("cpuacct") / "cpuacct.usage"),
            oom_kills=oom.get("oom_kill", 0),
            nr_throttled=cpu.get("nr_throttled", 0),
            pids=self._read_int(self._dir("pids") / "pids.current"),
        )

    def kill_all(self) -> None:
        freezer = self._dir("freezer")
        frozen = False
        if (freezer / "freezer.state").exists():
            # Freezing first means a fork bomb cannot outrun the kill loop.
            self._write(freezer / "freezer.state", "FROZEN")
            frozen = self._wait_frozen(freezer)
        try:
            for _ in range(100):
                pids = self.pids()
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                if frozen:
                    break
                time.sleep(0.005)
        finally:
            if frozen or (freezer / "freezer.state").exists():
                self._write(freezer / "freezer.state", "THAWED")

    def _wait_frozen(self, freezer: Path) -> bool:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            if self._read(freezer / "freezer.state").strip() == "FROZEN":
                return True
            time.sleep(0.002)
        return False

    def remove(self) -> None:
        for d in self._dirs():
            self._rmdir(d)
