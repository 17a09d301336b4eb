"""The zygote: a quiet copy of the launcher that forks shims and does nothing else.

Why: a forked shim shares its pages with its parent only until one of them writes to
a page; the copy-on-write then leaves the shim holding the old page privately. The
launcher writes all over its heap while serving requests, so shims forked from it
would each end up with megabytes of private pages. The zygote is forked once, before
the launcher serves anything; its loop touches a few pages per request, so shims forked
from it stay almost entirely shared (measured in bench/runtime.py, see runtime/README.md).

A spare: forking a Python process costs about a millisecond here, and a container start
needs two forks (the shim, then the init in the shim's new PID namespace). So the zygote
keeps one shim forked ahead of time, with its init forked too and waiting for its
config (``shim.spare``); a start hands the request to it and costs no fork at all. The
next spare is forked once the zygote has had no request for ``SPARE_DELAY`` seconds,
so making it does not compete for the CPU with the container just started; during a
burst of starts each one forks its shim on demand, as if there were no spare.

Protocol: the launcher sends the start request with two fds (the runtime's report and
exit pipes, see ``shim``) over a SOCK_SEQPACKET socketpair. When the launcher goes away
the socketpair reads EOF and the zygote exits; the spare sees its own socket close and
exits too (its waiting init dies with it); running shims are unaffected.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import socket
from typing import NoReturn

from runtime.launcher import protocol, shim

SPARE_DELAY = 0.025  # seconds without a request before the next spare shim is forked


def start() -> tuple[socket.socket, int]:
    """Fork the zygote; returns the launcher's end of the socketpair and the zygote's pid."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        ours.close()
        _serve(theirs)
    theirs.close()
    return ours, pid


def spawn_shim(sock: socket.socket, msg: dict[str, object], fds: list[int]) -> None:
    socket.send_fds(sock, [protocol.encode(msg)], fds)


def _serve(sock: socket.socket) -> NoReturn:
    # The kernel reaps shims for us; the runtime watches them through pipes and pidfds.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.set_wakeup_fd(-1)
    gc.disable()
    spare: socket.socket | None = None
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    while True:
        if spare is None and not poller.poll(int(SPARE_DELAY * 1000)):
            spare = _fork_spare(sock)
            continue
        try:
            data, fds = protocol.recv_raw(sock)
        except OSError:
            os._exit(0)  # the launcher is gone; the spare exits when its socket closes
        if not data:
            os._exit(0)
        try:
            if len(fds) == shim.START_FDS:
                _hand_over(sock, spare, data, fds)
                spare = None
        finally:
            for fd in fds:
                os.close(fd)


def _hand_over(sock: socket.socket, spare: socket.socket | None, data: bytes,
               fds: list[int]) -> None:
    """Give the request to the spare (or to a shim forked now); the spare is used up either way."""
    for _attempt in range(2):
        if spare is None:
            spare = _fork_spare(sock, fds)
        try:
            socket.send_fds(spare, [data], fds)
            return
        except OSError:
            pass  # someone killed the spare: fork a fresh one and retry once
        finally:
            spare.close()
        spare = None

def _fork_spare(sock: socket.socket, held: list[int] | None = None) -> socket.socket:
    """Fork a shim that waits for a request on the returned socket.

    ``held`` are fds the zygote holds at this moment (a request's pipes, when forking on
    demand): the shim must not keep copies, or the runtime would wait for an EOF that
    never comes. It gets its own copies with the request.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            for fd in held or ():
                os.close(fd)
            sock.close()
            ours.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the shim waits for its init
            shim.spare(theirs)
        finally:
            os._exit(127)
    theirs.close()
    return ours

