"""The zygote: a quiet copy of the launcher that forks shims and does nothing else.

Why: a forked shim shares its pages with its parent only until one of them writes to
a page; the copy-on-write then leaves the shim holding the old page privately. The
launcher writes all over its heap while serving requests, so shims forked from it
would each end up with megabytes of private pages. The zygote is forked once, before
the launcher serves anything; its loop touches a few pages per request, so shims forked
from it stay almost entirely shared (measured in bench/runtime.py, see runtime/README.md).

Protocol: the launcher sends the start request with one fd (the report pipe's write
end) over a SOCK_SEQPACKET socketpair; the shim reports its own pid on that pipe. When
the launcher goes away the socketpair reads EOF and the zygote exits; running shims
are unaffected.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
from typing import NoReturn

from runtime.launcher import protocol, shim


def start() -> tuple[socket.socket, int]:
    """Fork the zygote; returns the launcher's end of the socketpair and the zygote's pid."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        ours.close()
        _serve(theirs)
    theirs.close()
    return ours, pid


def spawn_shim(sock: socket.socket, msg: dict[str, object], report: int) -> None:
    socket.send_fds(sock, [protocol.encode(msg)], [report])


def _serve(sock: socket.socket) -> NoReturn:
    # The kernel reaps shims for us; the runtime watches them through pidfds.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.set_wakeup_fd(-1)
    gc.disable()
    while True:
        try:
            msg, fds = protocol.recv_with_fds(sock)
        except (OSError, protocol.ProtocolError):
            os._exit(0)  # the launcher is gone
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            continue
        pid = os.fork()
        if pid == 0:
            try:
                sock.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the shim waits for its init
                shim.run_shim(msg, fds[0])
            finally:
                os._exit(127)
        os.close(fds[0])
