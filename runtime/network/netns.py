"""Run netlink work inside a network namespace given by its file, without forking.

A network namespace is a per-thread attribute on Linux. ``run_in`` runs the work on a fresh
thread that joins the namespace with setns(2) and then ends: the thread never returns to a
pool, so no other code ever runs in the wrong namespace. Sockets opened on that thread
(pyroute2's netlink socket) and ``/proc/sys/net`` files opened there belong to the namespace.

Why not ``IPRoute(netns=...)``: pyroute2 forks a child per socket for that (unsafe from a
multithreaded asyncio process), and creates the namespace when the name does not exist, which
would turn a typo or a vanished pod into a leaked namespace.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pyroute2 import IPRoute

from runtime import syscalls

T = TypeVar("T")


def run_in(netns_path: str | None, work: Callable[[], T]) -> T:
    """``work()`` in the namespace at ``netns_path`` (None: the caller's own), its result or its exception."""
    if netns_path is None:
        return work()
    outcome: dict[str, object] = {}

    def thread() -> None:
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                syscalls.setns(fd, syscalls.CLONE_NEWNET)
            finally:
                os.close(fd)
            outcome["value"] = work()
        except BaseException as err:  # handed to the caller, re-raised there
            outcome["error"] = err

    worker = threading.Thread(target=thread, name=f"netns {netns_path}", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def with_ipr(netns_path: str | None, work: Callable[[IPRoute], T]) -> T:
    """``work(ip)`` with a netlink handle opened inside the namespace."""

    def opened() -> T:
        with IPRoute() as ip:
            return work(ip)

    return run_in(netns_path, opened)


def write_sysctl(key: str, value: str) -> None:
    """Write a sysctl of the calling thread's namespace (call it inside ``run_in``)."""
    Path("/proc/sys", *key.split(".")).write_text(value)
