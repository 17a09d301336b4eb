"""Shared fixtures: real etcd, a real API server, a client; and the leak check.

Every resource a test creates on the machine is named with the `kltest` prefix; the
session fails if any such mount, network namespace, link, cgroup or tmpfs dir is left.
A session that runs root tests (namespaces, mounts, cgroups, networks) holds a machine-wide
lock (`LOCK`) from start to end: two such sessions would otherwise share fixed names
(simulated hosts, bridges) and see each other's resources as leaks. Other sessions take no
lock and check only their own tmpfs directory (every session has one), so unit and API
tests never wait. Hold the lock (`flock /run/lock/kltest.lock CMD`) for anything else that
creates kltest resources.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.cluster import SHM, TMPFS, ApiServer, Etcd

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


def _own_leftovers() -> list[str]:
    """What this session left in its own tmpfs directory."""
    return [f"tmpfs dir {p}" for p in TMPFS.glob("*")] if TMPFS.is_dir() else []


def _leftovers() -> list[str]:
    """Every kltest resource on the machine (other sessions' tmpfs directories aside)."""
    found = _own_leftovers()
    found += [f"tmpfs dir {p}" for p in SHM.glob(f"{PREFIX}*") if not p.name.startswith(f"{PREFIX}-s")]
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f if PREFIX in line.split()[4]]
    if Path("/run/netns").is_dir():
        found += [f"netns {n}" for n in os.listdir("/run/netns") if n.startswith(PREFIX)]
    try:
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False).stdout
        found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines() if PREFIX in line]
    except FileNotFoundError:
        pass
    try:  # kubelite's own tables in this namespace (a node agent run here by a test)
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False).stdout
        found += [f"nft {line.strip()}" for line in tables.splitlines() if line.split()[-1:] in (["kubelite"],
                                                                                                 ["kubelite-svc"])]
    except FileNotFoundError:
        pass
    cgroot = Path("/sys/fs/cgroup")
    if cgroot.is_dir():
        for controller in cgroot.iterdir():
            with_prefix = list(controller.glob(f"{PREFIX}*")) + list(controller.glob(f"*/{PREFIX}*"))
            found += [f"cgroup {p}" for p in with_prefix]
    return found


@pytest.fixture(scope="session", autouse=True)
def no_leftovers(request: pytest.FixtureRequest) -> Iterator[None]:
    exclusive = any("root" in item.keywords or item.path.parent.name in ("node", "cluster")
                    for item in request.session.items)
    check = _leftovers if exclusive else _own_leftovers
    with open(LOCK, "a") as lock:
        if exclusive:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        TMPFS.mkdir(exist_ok=True)
        before = set(check())
        yield
        left = [item for item in check() if item not in before]
        with contextlib.suppress(OSError):
            TMPFS.rmdir()
        assert not left, "tests left these behind:\n  " + "\n  ".join(left)
