"""Resource limits through real v1 cgroups: OOM kill, CPU throttling, pids.max."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.cgroups import Resources
from runtime.container import Runtime
from tests.node.test_container_fixtures import busybox_rootfs, runtime, spec

pytestmark = pytest.mark.root
__all__ = ["busybox_rootfs", "runtime"]


async def test_memory_hog_is_oom_killed(runtime: Runtime, busybox_rootfs: Path) -> None:
    sb = await runtime.create_sandbox("kltest-pod-oom", "oom", hostname="oom")
    # dd fills a 200 MiB buffer from /dev/zero against a 32 MiB limit.
    hog = spec(busybox_rootfs, "hog", "dd if=/dev/zero of=/dev/null bs=200M count=1",
               resources=Resources(memory_limit=32 << 20))
    c = await runtime.create_container(sb, hog)
    await runtime.start(c.id)
    assert await runtime.wait(c.id, timeout=30)
    st = runtime.status(c.id)
    assert (st.exit_code, st.reason) == (137, "OOMKilled")
    # The host and its other containers are fine: a new one still runs.
    ok = await runtime.create_container(sb, spec(busybox_rootfs, "after", "true"))
    await runtime.start(ok.id)
    assert await runtime.wait(ok.id, timeout=10)
    assert runtime.status(ok.id).reason == "Completed"


async def test_cpu_limit_throttles(runtime: Runtime, busybox_rootfs: Path) -> None:
    sb = await runtime.create_sandbox("kltest-pod-cpu", "cpu", hostname="cpu")
    burner = spec(busybox_rootfs, "burn", "while :; do :; done",
                  resources=Resources(cpu_limit_millis=100, cpu_request_millis=100))
    c = await runtime.create_container(sb, burner)
    await runtime.start(c.id)
    assert not await runtime.wait(c.id, timeout=1.0)
    stats = runtime.stats(c.id)
    await runtime.stop(c.id, grace=0)
    assert stats.nr_throttled >= 3
    # 0.1 CPU for ~1 s: well under the 1 s a free spinning loop would use.
    assert stats.cpu_usage_ns < 400_000_000, stats


async def test_fork_bomb_stops_at_pids_max(runtime: Runtime, busybox_rootfs: Path) -> None:
    sb = await runtime.create_sandbox("kltest-pod-pids", "pids", hostname="pids")
    bomb = spec(busybox_rootfs, "bomb",
                "(while :; do sleep 30 & done) 2>/dev/null & sleep 30",
                resources=Resources(pids_limit=20))
    c = await runtime.create_container(sb, bomb)
    await runtime.start(c.id)
    assert not await runtime.wait(c.id, timeout=1.5)
    stats = runtime.stats(c.id)
    assert 15 <= stats.pids <= 20, stats
    await runtime.stop(c.id, grace=0)
    assert runtime.status(c.id).exit_code == 137
