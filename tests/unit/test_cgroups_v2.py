"""The v2 driver against a tmp dir laid out like a cgroup2 mount (v2 cannot be exercised on
the development machines' v1 kernel setup; VMs test it for real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.cgroups import (
    CgroupV1,
    CgroupV2,
    Resources,
    detect_version,
    millicpu_to_quota,
    millicpu_to_shares,
    open_cgroup,
    shares_to_weight,
)


@pytest.fixture
def fake_v2(tmp_path: Path) -> Path:
    root = tmp_path / "kltest-cgroup2"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def test_detection(fake_v2: Path, tmp_path: Path) -> None:
    assert detect_version(fake_v2) == 2
    assert isinstance(open_cgroup(fake_v2, "a/b"), CgroupV2)
    v1 = tmp_path / "kltest-v1"
    (v1 / "memory").mkdir(parents=True)
    assert detect_version(v1) == 1
    assert isinstance(open_cgroup(v1, "a"), CgroupV1)


def test_conversions_match_kubernetes() -> None:
    assert millicpu_to_shares(0) == 2
    assert millicpu_to_shares(100) == 102
    assert millicpu_to_shares(1000) == 1024
    assert millicpu_to_quota(250) == 25_000
    assert millicpu_to_quota(1) == 1000  # the kernel's minimum quota
    assert shares_to_weight(2) == 1
    assert shares_to_weight(1024) == 39
    assert shares_to_weight(262_144) == 10_000


def test_create_enables_controllers_top_down(fake_v2: Path) -> None:
    cg = CgroupV2(fake_v2, "kubelite/pod-1/c1")
    cg.create()
    assert cg.path.is_dir()
    # Each ancestor's subtree_control gets our controllers written once.
    assert (fake_v2 / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    assert (fake_v2 / "kubelite" / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    assert (fake_v2 / "kubelite" / "pod-1" / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"


def test_apply_writes_v2_files(fake_v2: Path) -> None:
    cg = CgroupV2(fake_v2, "kltest/c")
    cg.create()
    cg.apply(Resources(memory_limit=64 << 20, cpu_limit_millis=500, cpu_request_millis=250, pids_limit=50))
    assert (cg.path / "memory.max").read_text() == str(64 << 20)
    assert (cg.path / "memory.swap.max").read_text() == "0"
    assert (cg.path / "cpu.max").read_text() == "50000 100000"
    assert (cg.path / "cpu.weight").read_text() == str(shares_to_weight(256))
    assert (cg.path / "pids.max").read_text() == "50"
    assert cg.procs_files() == [str(cg.path / "cgroup.procs")]


def test_unset_limits_write_nothing(fake_v2: Path) -> None:
    cg = CgroupV2(fake_v2, "kltest/none")
    cg.create()
    cg.apply(Resources())
    assert sorted(p.name for p in cg.path.iterdir()) == []


def test_stats_parse_v2_files(fake_v2: Path) -> None:
    cg = CgroupV2(fake_v2, "kltest/s")
    cg.create()
    (cg.path / "memory.current").write_text("1048576\n")
    (cg.path / "cpu.stat").write_text("usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n"
                                      "nr_periods 10\nnr_throttled 4\nthrottled_usec 900\n")
    (cg.path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (cg.path / "pids.current").write_text("7\n")
    stats = cg.stats()
    assert (stats.memory_usage, stats.cpu_usage_ns, stats.oom_kills, stats.nr_throttled, stats.pids) == (
        1048576, 2_500_000, 1, 4, 7)


def test_kill_all_prefers_cgroup_kill(fake_v2: Path) -> None:
    cg = CgroupV2(fake_v2, "kltest/k")
    cg.create()
    (cg.path / "cgroup.kill").write_text("")
    (cg.path / "cgroup.procs").write_text("")
    cg.kill_all()
    assert (cg.path / "cgroup.kill").read_text() == "1"


def test_kill_all_without_cgroup_kill_freezes_around_the_kill(fake_v2: Path) -> None:
    cg = CgroupV2(fake_v2, "kltest/f")
    cg.create()
    (cg.path / "cgroup.procs").write_text("")  # no processes: nothing to signal
    cg.kill_all()
    assert (cg.path / "cgroup.freeze").read_text() == "0"  # thawed again


def test_remove_is_idempotent(fake_v2: Path) -> None:
    cg = CgroupV2(fake_v2, "kltest/r")
    cg.create()
    cg.remove()  # cgroupfs dirs rmdir with their control files; an empty fake dir does too
    assert not cg.path.exists()
    cg.remove()
