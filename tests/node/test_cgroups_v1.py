"""The v1 driver against the real kernel's /sys/fs/cgroup."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator

import pytest

from runtime.cgroups import Cgroup, Resources, detect_version, open_cgroup
from tests.node.test_container_fixtures import CGROUP_ROOT

pytestmark = pytest.mark.root


@pytest.fixture
def cgroup() -> Iterator[Cgroup]:
    if detect_version(CGROUP_ROOT) != 1:
        pytest.skip("this host's /sys/fs/cgroup is not cgroup v1")
    parent = f"kltest-{secrets.token_hex(4)}"
    cg = open_cgroup(CGROUP_ROOT, f"{parent}/c")
    cg.create()
    try:
        yield cg
    finally:
        cg.kill_all()
        cg.remove()
        open_cgroup(CGROUP_ROOT, parent).remove()


def test_apply_add_stats_kill_remove(cgroup: Cgroup) -> None:
    cgroup.apply(Resources(memory_limit=64 << 20, cpu_limit_millis=500, cpu_request_millis=100, pids_limit=30))
    mem = CGROUP_ROOT / "memory" / cgroup.name
    assert int((mem / "memory.limit_in_bytes").read_text()) == 64 << 20
    assert (CGROUP_ROOT / "cpu" / cgroup.name / "cpu.cfs_quota_us").read_text().strip() == "50000"
    assert (CGROUP_ROOT / "cpu" / cgroup.name / "cpu.shares").read_text().strip() == "102"
    procs = [subprocess.Popen(["sleep", "30"]) for _ in range(3)]
    try:
        for p in procs:
            cgroup.add_task(p.pid)
        assert sorted(cgroup.pids()) == sorted(p.pid for p in procs)
        stats = cgroup.stats()
        # (memory_usage stays 0: v1 does not move charges of tasks that join later.)
        assert stats.pids == 3 and stats.oom_kills == 0
        cgroup.kill_all()
        for p in procs:
            assert p.wait(timeout=5) == -9
        deadline = time.monotonic() + 2
        while cgroup.pids() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cgroup.pids() == []
    finally:
        for p in procs:
            p.kill()
            p.wait()
    cgroup.remove()
    assert not mem.exists()
    cgroup.remove()  # idempotent
