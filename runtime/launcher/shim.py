"""The per-container shim: parent of the container init, writer of its log, keeper of its exit.

The launcher's zygote forks shims ahead of time (``spare``), one per container. A shim:

1. leaves the launcher's session (``setsid``), so killing the launcher or its process
   group leaves containers running;
2. owns the container's stdout/stderr pipes and is the only writer of its CRI log file;
3. ``unshare(CLONE_NEWPID)`` then forks the container init, which becomes PID 1 there
   and waits for its config; all of this happens before any request arrives, so a start
   pays for no fork;
4. on a start request, hands the config to the init (which joins its cgroup, sets up
   its rootfs and execs, see ``init.run_container``);
5. waits for the init, writes ``exit.json`` atomically (tmp + rename) and then one line
   on the runtime's exit pipe, and exits.

Two pipes, both the runtime's, come with the start request: ``report`` gets "shim N",
"pid N" (the init's host pid) or "error ..." lines and reaches EOF when the init execs
(its copy is close-on-exec) or dies; ``exit`` gets a line once ``exit.json`` is written.
A runtime that restarts has lost those pipes; it finds the shim again through a pidfd
and ``exit.json`` (see container/runtime.py), so nothing depends on them but speed.

The shim holds the container's mount namespace open until the exit is recorded: the
kernel would otherwise tear down the container's mounts between the init's exit and
the moment its wait status is ready, which is time the runtime spends waiting.

The shim is a forked copy of the zygote with the GC frozen, so it shares almost all its
pages with the zygote and its sibling shims (see runtime/README.md for the measured PSS).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import time
from typing import Any, NoReturn

from runtime import syscalls as sc
from runtime.launcher import init, protocol
from runtime.launcher.logwriter import LogWriter

START_FDS = 2  # a start request carries the runtime's report and exit pipes


def spare(zygote: socket.socket) -> NoReturn:
    """Body of a shim forked ahead of time: get ready, then serve one start request."""
    os.setsid()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sc.unshare(sc.CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        zygote.close()
        ours.close()
        os.close(out_r)
        os.close(err_r)
        _become_init(theirs, out_w, err_w)
    theirs.close()
    os.close(out_w)
    os.close(err_w)
    data, fds = protocol.recv_raw(zygote)  # EOF: the zygote is gone, and our init dies with us
    zygote.close()
    if not data or len(fds) != START_FDS:
        os._exit(0)
    report, exit_w = fds
    code = 0
    try:
        socket.send_fds(ours, [data], [report])
        cfg = protocol.decode(data)
        _serve(cfg, pid, ours, report, exit_w, out_r, err_r)
    except BaseException as e:
        try:
            os.write(report, f"error failed to start shim: {e}\n".encode())
        except OSError:
            pass
        code = 1
    os._exit(code)


def _serve(cfg: dict[str, Any], pid: int, init_sock: socket.socket, report: int, exit_w: int,
           out_r: int, err_r: int) -> None:
    os.write(report, f"shim {os.getpid()}\n".encode())
    log_fd = os.open(cfg["log_path"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    mnt_ns = _receive_mount_namespace(init_sock)
    os.write(report, f"pid {pid}\n".encode())
    os.close(report)
    writer = LogWriter(log_fd, path=cfg["log_path"], max_size=int(cfg.get("log_max_size") or 0),
                       max_files=int(cfg.get("log_max_files") or 0))
    _pump(writer, {out_r: "stdout", err_r: "stderr"})
    _, status = os.waitpid(pid, 0)
    _write_exit(cfg["exit_path"], status)
    os.write(exit_w, b"exited\n")
    if mnt_ns is not None:
        os.close(mnt_ns)


def _receive_mount_namespace(init_sock: socket.socket) -> int | None:
    """The init's mount namespace, sent as soon as it exists; None if the init failed first."""
    try:
        _msg, fds, _flags, _addr = socket.recv_fds(init_sock, 16, 1)
    except OSError:
        return None
    finally:
        init_sock.close()
    return fds[0] if fds else None


def _become_init(sock: socket.socket, out_w: int, err_w: int) -> NoReturn:
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    for fd in (devnull, out_w, err_w):
        if fd > 2:
            os.close(fd)
    # If the shim dies, the container must not run on unsupervised and unlogged.
    sc.set_parent_death_signal(signal.SIGKILL)
    data, fds = protocol.recv_raw(sock)  # EOF if the shim died before the prctl above
    if not data or len(fds) != 1:
        os._exit(0)
    init.run_container(protocol.decode(data), fds[0], sock)


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
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, json.dumps(record).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)
