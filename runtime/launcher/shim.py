"""The per-container shim: parent of the container init, writer of its log, keeper of its exit.

The launcher's zygote forks one shim per container. The shim:

1. leaves the launcher's session (``setsid``), so killing the launcher or its process
   group leaves containers running;
2. owns the container's stdout/stderr pipes and is the only writer of its CRI log file;
3. ``unshare(CLONE_NEWPID)`` then forks the container init, which becomes PID 1 there;
4. waits for the init and writes ``exit.json`` atomically (tmp + rename) before it exits.

The runtime learns of the exit by polling a pidfd on the shim (works for non-children)
and then reads ``exit.json``; no one needs to be the shim's parent for that, so a dead
launcher loses nothing. The shim is a forked copy of the zygote with the GC frozen,
so it shares almost all its pages with the zygote and its sibling shims (see
runtime/README.md for the measured PSS).
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
from typing import Any, NoReturn

from runtime import syscalls as sc
from runtime.launcher import init
from runtime.launcher.logwriter import LogWriter


def run_shim(cfg: dict[str, Any], report: int) -> NoReturn:
    """Body of the shim process; ``report`` gets "pid N" (the init's host pid) or an error."""
    code = 0
    try:
        os.write(report, f"shim {os.getpid()}\n".encode())
        os.setsid()
        log_fd = os.open(cfg["log_path"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        go_r, go_w = os.pipe()
        sc.unshare(sc.CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            os.close(go_w)
            _become_init(cfg, report, out_w, err_w, go_r)
        for fd in (out_w, err_w, go_r):
            os.close(fd)
        _move_to_cgroup(cfg, pid, report, go_w)
        os.write(report, f"pid {pid}\n".encode())
        os.close(report)
        _pump(LogWriter(log_fd), {out_r: "stdout", err_r: "stderr"})
        _, status = os.waitpid(pid, 0)
        _write_exit(cfg["exit_path"], status)
    except BaseException as e:
        try:
            os.write(report, f"error failed to start shim for container {cfg['name']}: {e}\n".encode())
        except OSError:
            pass
        code = 1
    os._exit(code)


def _move_to_cgroup(cfg: dict[str, Any], pid: int, report: int, go: int) -> None:
    """Join the init to its cgroup while it mounts its rootfs, then let it exec."""
    try:
        init.join_cgroup(cfg["cgroup_procs"], pid)
        os.write(go, b"1")
    except OSError as e:
        os.write(report, f"error failed to join cgroup for container {cfg['name']}: {e}\n".encode())
        os.kill(pid, signal.SIGKILL)
    finally:
        os.close(go)


def _become_init(cfg: dict[str, Any], report: int, out_w: int, err_w: int, go: int) -> NoReturn:
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    for fd in (devnull, out_w, err_w):
        if fd > 2:
            os.close(fd)
    # If the shim dies, the container must not run on unsupervised and unlogged.
    sc.set_parent_death_signal(signal.SIGKILL)
    init.run_container(cfg, report, go)


def _pump(writer: LogWriter, streams: dict[int, str]) -> None:
    """Copy both pipes to the log until both reach EOF (the init and all its children are gone)."""
    poller = select.poll()
    for fd in streams:
        poller.register(fd, select.POLLIN)
    open_fds = set(streams)
    while open_fds:
        for fd, _event in poller.poll():
            try:
                data = os.read(fd, 65536)
            except InterruptedError:
                continue
            if data:
                writer.feed(streams[fd], data)
            else:
                writer.close_stream(streams[fd])
                poller.unregister(fd)
                os.close(fd)
                open_fds.discard(fd)


def _write_exit(path: str, status: int) -> None:
    record = {
        # Like a shell: death by signal N is exit code 128 + N (SIGKILL -> 137).
        "exit_code": 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status),
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "finished_at_ns": time.time_ns(),
    }
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.rename(tmp, path)
