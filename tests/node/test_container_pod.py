"""Pods: shared localhost and emptyDir, hostPath binds, logs in CRI format."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime.container import Mount, Runtime
from runtime.launcher.logwriter import log_files, parse_line
from tests.node.test_container_fixtures import busybox_rootfs, log_texts, run_to_exit, runtime, spec

pytestmark = pytest.mark.root
__all__ = ["busybox_rootfs", "runtime"]

CRI_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (F|P) .*$")


async def test_two_containers_share_localhost_and_empty_dir(runtime: Runtime, busybox_rootfs: Path) -> None:
    sb = await runtime.create_sandbox("kltest-pod-share", "share", hostname="share")
    shared = Mount(str(sb.volume_dir("cache")), "/cache")
    server = spec(busybox_rootfs, "server",
                  "echo from-server > /cache/note; echo pong | nc -l -p 8080 127.0.0.1", mounts=[shared])
    s = await runtime.create_container(sb, server)
    await runtime.start(s.id)
    client = spec(busybox_rootfs, "client",
                  "for i in 1 2 3 4 5 6 7 8 9 10; do nc 127.0.0.1 8080 </dev/null && break; sleep 0.1; done; "
                  "cat /cache/note", mounts=[shared])
    code, log = await run_to_exit(runtime, sb, client)
    assert code == 0, log
    assert log_texts(log, "stdout") == ["pong", "from-server"]
    assert await runtime.wait(s.id, timeout=5)
    assert (sb.volume_dir("cache") / "note").read_text() == "from-server\n"


async def test_host_path_bind_and_read_only(runtime: Runtime, busybox_rootfs: Path, tmp_path: Path) -> None:
    host = tmp_path / "kltest-host"
    host.mkdir()
    (host / "in.txt").write_text("from host\n")
    sb = await runtime.create_sandbox("kltest-pod-hp", "hp", hostname="hp")
    s = spec(busybox_rootfs, "hp", "cat /h/in.txt; echo out > /h/out.txt; echo x > /ro/y || echo ro-refused",
             mounts=[Mount(str(host), "/h"), Mount(str(host), "/ro", read_only=True)])
    code, log = await run_to_exit(runtime, sb, s)
    assert log_texts(log, "stdout") == ["from host", "ro-refused"]
    assert (host / "out.txt").read_text() == "out\n"
    assert code == 0


async def test_logs_capture_both_streams_in_order(runtime: Runtime, busybox_rootfs: Path) -> None:
    sb = await runtime.create_sandbox("kltest-pod-logs", "logs", hostname="logs")
    script = "echo one; sleep 0.05; echo two >&2; sleep 0.05; echo three; sleep 0.05; printf tail >&2"
    code, log = await run_to_exit(runtime, sb, spec(busybox_rootfs, "logger", script))
    assert code == 0
    lines = log.splitlines()
    assert all(CRI_LINE.match(line) for line in lines), lines
    assert [(line.split(" ")[1], line.split(" ", 3)[3]) for line in lines] == [
        ("stdout", "one"), ("stderr", "two"), ("stdout", "three"), ("stderr", "tail")]
    stamps = [line.split(" ")[0] for line in lines]
    assert stamps == sorted(stamps)


async def test_long_lines_are_split_into_partial_records(runtime: Runtime, busybox_rootfs: Path) -> None:
    sb = await runtime.create_sandbox("kltest-pod-long", "long", hostname="long")
    code, log = await run_to_exit(runtime, sb, spec(busybox_rootfs, "long",
                                                   "head -c 40000 /dev/zero | tr '\\0' a; echo"))
    tags = [line.split(" ")[2] for line in log.splitlines()]
    assert tags == ["P", "P", "F"]
    assert sum(len(line.split(" ", 3)[3]) for line in log.splitlines()) == 40000


async def test_run_once_keeps_changes_in_the_given_upper_dir(busybox_rootfs: Path, tmp_path: Path) -> None:
    from runtime.container import run_once

    upper = tmp_path / "kltest-layer"
    lines: list[tuple[str, str]] = []
    code = await run_once(lowerdirs=[busybox_rootfs], upperdir=upper, argv=["sh", "-c", "echo built > /b; echo ok"],
                          env={"A": "1"}, workdir="/", user="", output=lambda s, t: lines.append((s, t)))
    assert code == 0
    assert (upper / "b").read_text() == "built\n"
    assert lines == [("stdout", "ok")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kltest-layer"]


async def test_pod_containers_share_dev_shm_until_the_sandbox_goes(runtime: Runtime, busybox_rootfs: Path) -> None:
    sb = await runtime.create_sandbox("kltest-pod-shm", "shm", hostname="shm")
    code, log = await run_to_exit(runtime, sb, spec(busybox_rootfs, "writer", "echo shared > /dev/shm/note"))
    assert code == 0, log
    code, log = await run_to_exit(runtime, sb, spec(
        busybox_rootfs, "reader", "cat /dev/shm/note; grep ' /dev/shm ' /proc/mounts | cut -d' ' -f3,4"))
    assert code == 0, log
    note, mount = log_texts(log, "stdout")
    assert note == "shared"
    assert mount.startswith("tmpfs rw,nosuid,nodev,noexec")
    other = await runtime.create_sandbox("kltest-pod-shm2", "shm2", hostname="shm2")
    code, log = await run_to_exit(runtime, other, spec(busybox_rootfs, "outsider", "cat /dev/shm/note"))
    assert code != 0  # another pod has a /dev/shm of its own
    shm = str(sb.shm_path)
    await runtime.remove_sandbox(sb.pod_uid)
    mountinfo = Path("/proc/self/mountinfo").read_text()
    assert not [line for line in mountinfo.splitlines() if f" {shm} " in line]
    assert not sb.dir.exists()


async def test_container_log_rotates_by_size_keeping_max_files(runtime: Runtime, busybox_rootfs: Path) -> None:
    runtime.log_max_size, runtime.log_max_files = 4096, 3
    sb = await runtime.create_sandbox("kltest-pod-rotate", "rotate", hostname="rotate")
    c = await runtime.create_container(sb, spec(busybox_rootfs, "chatty",
                                                "i=0; while [ $i -lt 600 ]; do echo line $i; i=$((i+1)); done"))
    await runtime.start(c.id)
    assert await runtime.wait(c.id, timeout=20)
    assert runtime.status(c.id).exit_code == 0
    path = runtime.log_path(c.id)
    files = log_files(str(path))
    assert files == [f"{path}.2", f"{path}.1", str(path)]
    assert all(Path(f).stat().st_size <= 4096 for f in files)
    texts = [parse_line(line)[3] for f in files for line in Path(f).read_text().splitlines()]
    first = int(texts[0].split()[1])
    assert texts == [f"line {i}" for i in range(first, 600)]  # whole records, in order, newest kept
