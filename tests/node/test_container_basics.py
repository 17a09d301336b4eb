"""A container is a real isolated process tree: PID 1, hostname, rootfs, upper dir, user."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.container import ContainerError, Phase, Runtime
from tests.node.test_container_fixtures import busybox_rootfs, log_texts, run_to_exit, runtime, spec

pytestmark = pytest.mark.root
__all__ = ["busybox_rootfs", "runtime"]


async def test_own_pid1_hostname_and_rootfs(runtime: Runtime, busybox_rootfs: Path) -> None:
    sb = await runtime.create_sandbox("kltest-pod-a", "web-0", hostname="kltest-web-0")
    script = 'echo "pid=$$"; hostname; ls /; test -e /usr/bin/python3 && echo HOSTFILES; echo done'
    code, log = await run_to_exit(runtime, sb, spec(busybox_rootfs, "web", script))
    lines = log_texts(log, "stdout")
    assert code == 0, log
    assert lines[0] == "pid=1"
    assert lines[1] == "kltest-web-0"
    assert sorted(lines[2:-1]) == ["bin", "dev", "etc", "proc", "sys", "tmp"]
    assert "HOSTFILES" not in lines
    st = runtime.list()[0]
    assert st.phase is Phase.EXITED and st.reason == "Completed"


async def test_writes_go_to_upper_dir_only(runtime: Runtime, busybox_rootfs: Path) -> None:
    sb = await runtime.create_sandbox("kltest-pod-b", "w", hostname="w")
    s = spec(busybox_rootfs, "writer", "echo hello > /etc/written; mkdir -p /data; echo x > /data/f")
    c = await runtime.create_container(sb, s)
    await runtime.start(c.id)
    assert await runtime.wait(c.id, timeout=10)
    upper = runtime.root / "containers" / c.id / "upper"
    assert (upper / "etc" / "written").read_text() == "hello\n"
    assert (upper / "data" / "f").exists()
    assert not (busybox_rootfs / "etc" / "written").exists()
    assert not (busybox_rootfs / "data").exists()


async def test_exit_code_env_workdir_user(runtime: Runtime, busybox_rootfs: Path) -> None:
    sb = await runtime.create_sandbox("kltest-pod-c", "c", hostname="c")
    s = spec(busybox_rootfs, "who", 'id; pwd; echo "$GREETING"; cat /etc/hosts | head -1; exit 7',
             env={"GREETING": "hi there"}, working_dir="/work/dir", user="app")
    code, log = await run_to_exit(runtime, sb, s)
    out = log_texts(log, "stdout")
    assert code == 7
    assert out[0] == "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)"
    assert out[1:3] == ["/work/dir", "hi there"]
    assert out[3].startswith("127.0.0.1")
    st = runtime.list()[0]
    assert st.reason == "Error"


async def test_capabilities_and_masked_paths(runtime: Runtime, busybox_rootfs: Path) -> None:
    sb = await runtime.create_sandbox("kltest-pod-d", "d", hostname="d")
    script = ("grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status; "
              "wc -c < /proc/timer_list; ls /proc/acpi | wc -l; "
              "touch /sys/x 2>/dev/null || echo sys-ro; echo 1 > /proc/sys/kernel/ostype 2>/dev/null || echo "
              "procsys-ro; ls /dev")
    code, log = await run_to_exit(runtime, sb, spec(busybox_rootfs, "caps", script))
    out = log_texts(log, "stdout")
    assert code == 0, log
    fields = dict(line.split(":\t") for line in out[:3])
    # Docker's 14 default capabilities: bits 0,1,3,4,5,6,7,8,10,13,18,27,29,31.
    assert fields["CapBnd"] == fields["CapEff"] == "00000000a80425fb"
    assert fields["NoNewPrivs"] == "1"
    assert out[3:5] == ["0", "0"]  # /proc/timer_list behind /dev/null, /proc/acpi an empty tmpfs
    assert "sys-ro" in out and "procsys-ro" in out
    for dev in ("null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm"):
        assert dev in out


async def test_start_failure_is_recorded(runtime: Runtime, busybox_rootfs: Path) -> None:
    sb = await runtime.create_sandbox("kltest-pod-e", "e", hostname="e")
    c = await runtime.create_container(sb, spec(busybox_rootfs, "broken", "true", user="nosuchuser"))
    with pytest.raises(ContainerError, match="failed to resolve user for container broken"):
        await runtime.start(c.id)
    st = runtime.status(c.id)
    assert st.phase is Phase.EXITED and st.reason == "StartError" and st.exit_code == 128
    c2 = await runtime.create_container(sb, spec(busybox_rootfs, "nolayer", "true"))
    object.__setattr__(runtime.status(c2.id).spec, "lowerdirs", ["/nonexistent-kltest"])
    with pytest.raises(ContainerError, match="failed to mount overlay for container nolayer"):
        await runtime.start(c2.id)
