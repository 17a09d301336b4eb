"""Shared fixtures for the container and cgroup node tests (no tests here).

A busybox rootfs made from Debian's busybox-static is the single overlay lowerdir.
Every runtime root dir and cgroup is named ``kltest-...`` and removed afterwards,
including the launcher, pod namespaces pins and any container still running.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kubelet.configvolumes import unmount_under
from runtime.cgroups import open_cgroup
from runtime.container import ContainerSpec, Runtime, Sandbox

CGROUP_ROOT = Path("/sys/fs/cgroup")
BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "true", "echo", "cat", "ls", "hostname", "sleep", "id", "ps", "nc", "touch", "dd",
           "head", "tr", "seq", "readlink", "wc", "trap", "stat", "mkdir", "grep", "tail")


@pytest.fixture(scope="session")
def busybox_rootfs() -> Iterator[Path]:
    if not BUSYBOX.exists():
        pytest.skip("needs Debian's busybox-static at /bin/busybox")
    root = Path(tempfile.mkdtemp(prefix="kltest-rootfs-"))
    try:
        _fill_rootfs(root)
        yield root
    finally:
        shutil.rmtree(root)


def _fill_rootfs(root: Path) -> None:
    (root / "bin").mkdir()
    (root / "etc").mkdir()
    (root / "tmp").mkdir(mode=0o1777)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"
                                         "app:x:1000:1000:app:/home/app:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\napp:x:1000:\nextra:x:2000:app\n")


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    root = Path(tempfile.mkdtemp(prefix="kltest-rt-"))
    parent = f"kltest-{secrets.token_hex(4)}"
    rt = await Runtime.open(root, cgroup_root=CGROUP_ROOT, cgroup_parent=parent)
    try:
        yield rt
    finally:
        await cleanup_runtime(root, parent)


async def cleanup_runtime(root: Path, parent: str) -> None:
    """Remove everything a test's runtime made, whichever Runtime instance made it."""
    rt = await Runtime.open(root, cgroup_root=CGROUP_ROOT, cgroup_parent=parent)
    for sb in rt.sandboxes():
        unmount_under(sb.dir / "volumes")  # secret tmpfs volumes of pods the kubelet did not finish
        await rt.remove_sandbox(sb.pod_uid)
    for st in rt.list():
        await rt.remove(st.id)
    await rt.close()
    await rt.shutdown_launcher()
    await asyncio.to_thread(open_cgroup(CGROUP_ROOT, parent).remove)
    shutil.rmtree(root, ignore_errors=True)


def spec(rootfs: Path, name: str, script: str, **kwargs: object) -> ContainerSpec:
    return ContainerSpec(name=name, argv=["sh", "-c", script], lowerdirs=[str(rootfs)], **kwargs)  # type: ignore[arg-type]


async def run_to_exit(rt: Runtime, sb: Sandbox, s: ContainerSpec, timeout: float = 10) -> tuple[int, str]:
    """Start ``s`` in ``sb``, wait for its exit; (exit code, log text)."""
    c = await rt.create_container(sb, s)
    await rt.start(c.id)
    assert await rt.wait(c.id, timeout=timeout), f"container {s.name} did not exit in {timeout}s"
    st = rt.status(c.id)
    assert st.exit_code is not None
    return st.exit_code, rt.log_path(c.id).read_text()


def log_texts(log: str, stream: str | None = None) -> list[str]:
    out = []
    for line in log.splitlines():
        _stamp, s, _tag, text = line.split(" ", 3) if line.count(" ") >= 3 else (*line.split(" ", 2), "")
        if stream is None or s == stream:
            out.append(text)
    return out


IS_ROOT = os.geteuid() == 0
