"""Shared fixtures: real etcd, a real API server, a client; and the leak check.

Every resource a test creates on the machine is named with the `kltest` prefix; the
session fails if any such mount, network namespace, link, cgroup or tmpfs dir is left.
A test session holds a machine-wide lock (`LOCK`) from start to end: two sessions on one
machine would otherwise share fixed names (simulated hosts, bridges) and see each other's
resources as leaks. Hold the same lock (`flock /run/lock/kltest.lock CMD`) for anything
else that creates kltest resources.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.cluster import TMPFS, ApiServer, Etcd

PREFIX = "kltest"
LOCK = Path("/run/lock/kltest.lock") if Path("/run/lock").is_dir() else Path("/tmp/kltest.lock")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root for namespaces, mounts and cgroups (CI runs as root)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def etcd() -> Iterator[Etcd]:
    server = Etcd()
    server.start()
    yield server
    server.remove()


@pytest.fixture
async def apiserver(etcd: Etcd) -> AsyncIterator[ApiServer]:
    server = ApiServer(etcd.url, bookmark_interval=0.5)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(apiserver: ApiServer) -> AsyncIterator[object]:
    from api.client import Client

    async with Client(apiserver.url) as c:
        yield c


def _leftovers() -> list[str]:
    found: list[str] = []
    found += [f"tmpfs dir {p}" for p in TMPFS.glob(f"{PREFIX}*")]
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f if PREFIX in line.split()[4]]
    if Path("/run/netns").is_dir():
        found += [f"netns {n}" for n in os.listdir("/run/netns") if n.startswith(PREFIX)]
    try:
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False).stdout
        found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines() if PREFIX in line]
    except FileNotFoundError:
        pass
    cgroot = Path("/sys/fs/cgroup")
    if cgroot.is_dir():
        for controller in cgroot.iterdir():
            with_prefix = list(controller.glob(f"{PREFIX}*")) + list(controller.glob(f"*/{PREFIX}*"))
            found += [f"cgroup {p}" for p in with_prefix]
    return found


@pytest.fixture(scope="session", autouse=True)
def no_leftovers() -> Iterator[None]:
    with open(LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        before = set(_leftovers())
        yield
        left = [item for item in _leftovers() if item not in before]
        assert not left, "tests left these behind:\n  " + "\n  ".join(left)
