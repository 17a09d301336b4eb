"""The v1 driver's file layout against a tmp dir (the real kernel is in tests/node)."""

from __future__ import annotations

from pathlib import Path

from runtime.cgroups import CgroupV1, Resources


def _fake_v1(root: Path, *, comounted: bool) -> None:
    for c in ("memory", "pids", "freezer"):
        (root / c).mkdir(parents=True)
    if comounted:
        (root / "cpu,cpuacct").mkdir()
        (root / "cpu").symlink_to("cpu,cpuacct")
        (root / "cpuacct").symlink_to("cpu,cpuacct")
    else:
        (root / "cpu").mkdir()
        (root / "cpuacct").mkdir()


def test_apply_and_procs_files(tmp_path: Path) -> None:
    _fake_v1(tmp_path, comounted=False)
    cg = CgroupV1(tmp_path, "kltest/c")
    cg.create()
    cg.apply(Resources(memory_limit=1 << 20, cpu_limit_millis=200, cpu_request_millis=500, pids_limit=9))
    assert (tmp_path / "memory/kltest/c/memory.limit_in_bytes").read_text() == str(1 << 20)
    assert (tmp_path / "cpu/kltest/c/cpu.cfs_quota_us").read_text() == "20000"
    assert (tmp_path / "cpu/kltest/c/cpu.cfs_period_us").read_text() == "100000"
    assert (tmp_path / "cpu/kltest/c/cpu.shares").read_text() == "512"
    assert (tmp_path / "pids/kltest/c/pids.max").read_text() == "9"
    assert len(cg.procs_files()) == 5


def test_comounted_cpu_cpuacct_is_joined_once(tmp_path: Path) -> None:
    _fake_v1(tmp_path, comounted=True)
    cg = CgroupV1(tmp_path, "kltest/c")
    cg.create()
    assert len(cg.procs_files()) == 4
    (tmp_path / "cpu,cpuacct/kltest/c/cpuacct.usage").write_text("12345\n")
    (tmp_path / "memory/kltest/c/memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    stats = cg.stats()
    assert (stats.cpu_usage_ns, stats.oom_kills) == (12345, 2)
