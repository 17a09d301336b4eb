"""Exec, stop with a grace period, and re-adoption by a new runtime after the launcher dies."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from runtime.container import ContainerError, ExecError, Phase, Runtime
from runtime.launcher.init import process_start_time
from tests.node.test_container_fixtures import CGROUP_ROOT, busybox_rootfs, runtime, spec

pytestmark = pytest.mark.root
__all__ = ["busybox_rootfs", "runtime"]


async def _running(rt: Runtime, pod: str, rootfs: Path, script: str = "echo up; sleep 60") -> str:
    sb = await rt.create_sandbox(pod, pod, hostname=pod)
    c = await rt.create_container(sb, spec(rootfs, "main", script))
    await rt.start(c.id)
    return c.id


async def test_exec_sees_the_same_namespaces(runtime: Runtime, busybox_rootfs: Path) -> None:
    cid = await _running(runtime, "kltest-pod-exec", busybox_rootfs)
    init_pid = runtime.status(cid).init_pid
    links = "; ".join(f"readlink /proc/{p}/ns/{ns}" for ns in ("net", "mnt", "pid") for p in ("1", "self"))
    proc = await runtime.exec(cid, ["sh", "-c", f"hostname; {links}; echo oops >&2; exit 3"])
    result = await proc.communicate()
    out = result.stdout.decode().split()
    assert result.exit_code == 3
    assert result.stderr == b"oops\n"
    assert out[0] == "kltest-pod-exec"
    assert out[1] == out[2] and out[3] == out[4] and out[5] == out[6]
    assert out[1] == os.readlink(f"/proc/{init_pid}/ns/net")
    assert out[3] == os.readlink(f"/proc/{init_pid}/ns/mnt")


async def test_exec_with_stdin_and_tty(runtime: Runtime, busybox_rootfs: Path) -> None:
    cid = await _running(runtime, "kltest-pod-tty", busybox_rootfs)
    piped = await runtime.exec(cid, ["cat"], stdin=True)
    result = await piped.communicate(b"through stdin\n")
    assert (result.exit_code, result.stdout) == (0, b"through stdin\n")

    tty = await runtime.exec(cid, ["sh", "-c", "test -t 0 && echo is-a-tty; stty size 2>/dev/null; exit 5"],
                             tty=True)
    tty.resize(40, 100)
    out = b""
    while chunk := await tty.read():
        out += chunk
    assert "is-a-tty" in out.decode()
    assert await tty.wait() == 5
    tty.close()


async def test_exec_errors(runtime: Runtime, busybox_rootfs: Path) -> None:
    cid = await _running(runtime, "kltest-pod-exec-err", busybox_rootfs)
    proc = await runtime.exec(cid, ["/no/such/binary"])
    with pytest.raises(ExecError, match="failed to exec /no/such/binary for exec in container main"):
        await proc.communicate()
    await runtime.stop(cid, grace=0)
    with pytest.raises(ContainerError, match="not running"):
        await runtime.exec(cid, ["true"])


async def test_sigterm_ignoring_process_dies_after_grace(runtime: Runtime, busybox_rootfs: Path) -> None:
    cid = await _running(runtime, "kltest-pod-stop", busybox_rootfs,
                         "trap '' TERM; sleep 60 & sleep 60 & wait")
    await asyncio.sleep(0.2)
    start = time.monotonic()
    st = await runtime.stop(cid, grace=0.5)
    elapsed = time.monotonic() - start
    assert 0.5 <= elapsed < 3
    assert (st.phase, st.exit_code, st.reason) == (Phase.EXITED, 137, "Error")


async def test_sigterm_handling_process_exits_at_once(runtime: Runtime, busybox_rootfs: Path) -> None:
    cid = await _running(runtime, "kltest-pod-term", busybox_rootfs,
                         "trap 'echo bye; exit 0' TERM; while :; do sleep 0.05; done")
    await asyncio.sleep(0.2)
    start = time.monotonic()
    st = await runtime.stop(cid, grace=10)
    assert time.monotonic() - start < 2
    assert (st.exit_code, st.reason) == (0, "Completed")


async def test_new_runtime_readopts_after_launcher_death(runtime: Runtime, busybox_rootfs: Path) -> None:
    cid = await _running(runtime, "kltest-pod-adopt", busybox_rootfs)
    launcher_pid = int((await runtime.launcher.request({"op": "ping"}))["pid"])
    init_pid = runtime.status(cid).init_pid
    assert init_pid is not None
    await runtime.close()
    os.kill(launcher_pid, signal.SIGKILL)
    await asyncio.sleep(0.1)
    assert process_start_time(init_pid) == runtime.status(cid).init_start  # still running

    again = await Runtime.open(runtime.root, cgroup_root=CGROUP_ROOT, cgroup_parent=runtime.cgroup_parent)
    try:
        new_pid = int((await again.launcher.request({"op": "ping"}))["pid"])
        assert new_pid != launcher_pid
        assert again.status(cid).phase is Phase.RUNNING
        result = await (await again.exec(cid, ["echo", "still here"])).communicate()
        assert result.stdout == b"still here\n"
        st = await again.stop(cid, grace=0.2)
        assert (st.phase, st.exit_code) == (Phase.EXITED, 137)
        assert again.log_path(cid).read_text().endswith("stdout F up\n")
    finally:
        await again.close()


async def test_exit_while_nobody_watches_is_recorded(runtime: Runtime, busybox_rootfs: Path) -> None:
    cid = await _running(runtime, "kltest-pod-offline", busybox_rootfs, "sleep 0.3; exit 4")
    await runtime.close()
    await asyncio.sleep(0.6)
    again = await Runtime.open(runtime.root, cgroup_root=CGROUP_ROOT, cgroup_parent=runtime.cgroup_parent)
    try:
        assert await again.wait(cid, timeout=2)
        st = again.status(cid)
        assert (st.exit_code, st.reason) == (4, "Error")
    finally:
        await again.close()
