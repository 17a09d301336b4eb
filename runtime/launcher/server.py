"""The launcher: a long-lived, single-threaded process that forks containers.

Why a separate process: forking from the runtime's asyncio process would copy its
threads' locks and a large heap for every container; this process stays small, has
one thread, has the GC frozen (so forked shims share its pages), and has every module
a child needs already imported, so a container start costs two forks and a few dozen
syscalls.

Protocol: see ``protocol``. Operations:

- ``ping`` -> ``{"ok": true, "pid": N, "zygote_pid": M}``
- ``sandbox`` (namespaces to pin, hostname) -> ok or error
- ``start`` (container config + fds: the runtime's report and exit pipes) -> ``{"ok":
  true}`` once handed to the zygote; the shim and init report on those pipes (see
  ``shim``), so a start's progress never waits for this process
- ``exec`` (+ fds stdin, stdout, stderr, status) -> ``{"ok": true, "pid"}`` at once; the
  exit status arrives later on the status fd, which the caller owns.

Every child is reaped here on SIGCHLD; results travel through pipes and files, never
through wait statuses, so a new launcher can serve containers an old one started.
"""

from __future__ import annotations

import gc
import os
import selectors
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from runtime.launcher import init, protocol, shim, zygote

Child = Callable[[dict[str, Any], int], NoReturn]


class _Pending:
    """A forked child whose report pipe we read until EOF, then answer ``conn``."""

    def __init__(self, conn: socket.socket, op: str) -> None:
        self.conn, self.op = conn, op
        self.data = b""


class Launcher:
    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        # First, before the heap is churned by serving: shims fork from this quiet copy.
        self.zygote, self.zygote_pid = zygote.start()
        self.sel = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        self.listener.bind(socket_path)
        os.chmod(socket_path, 0o600)
        self.listener.listen(128)
        self.sel.register(self.listener, selectors.EVENT_READ, self._accept)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.sel.register(self.wake_r, selectors.EVENT_READ, self._reap)
        self.owned: set[int] = {self.listener.fileno(), self.wake_r, self.wake_w, self.sel.fileno(),
                                self.zygote.fileno()}
        self.running = True

    def serve(self) -> None:
        while self.running:
            for key, _ in self.sel.select():
                key.data(key.fileobj)

    # connections ---------------------------------------------------------------

    def _accept(self, _: Any) -> None:
        conn, _addr = self.listener.accept()
        self.owned.add(conn.fileno())
        self.sel.register(conn, selectors.EVENT_READ, self._request)

    def _request(self, conn: socket.socket) -> None:
        self.sel.unregister(conn)
        fds: list[int] = []
        try:
            msg, fds = protocol.recv_with_fds(conn)
            self._dispatch(conn, msg, fds)
        except Exception as e:
            self._reply(conn, {"ok": False, "error": f"launcher: {type(e).__name__}: {e}"})
        finally:
            for fd in fds:
                os.close(fd)

    def _dispatch(self, conn: socket.socket, msg: dict[str, Any], fds: list[int]) -> None:
        op = msg.get("op")
        if op == "ping":
            self._reply(conn, {"ok": True, "pid": os.getpid(), "zygote_pid": self.zygote_pid})
        elif op == "shutdown":
            self._reply(conn, {"ok": True})
            self.running = False
        elif op == "sandbox":
            self._fork_reporting(conn, "sandbox", init.run_sandbox, msg)
        elif op == "start":
            if len(fds) != shim.START_FDS:
                raise protocol.ProtocolError("start needs 2 fds: report, exit")
            self._start(msg, fds)
            self._reply(conn, {"ok": True})
        elif op == "exec":
            if len(fds) != 4:
                raise protocol.ProtocolError("exec needs 4 fds: stdin, stdout, stderr, status")
            pid = self._fork(lambda: self._exec_child(msg, fds))
            self._reply(conn, {"ok": True, "pid": pid})
        else:
            raise protocol.ProtocolError(f"unknown op {op!r}")

    def _reply(self, conn: socket.socket, obj: dict[str, Any]) -> None:
        try:
            conn.send(protocol.encode(obj))
        except OSError:
            pass  # the client went away; nothing to tell
        self.owned.discard(conn.fileno())
        conn.close()

    # children ------------------------------------------------------------------

    def _fork(self, body: Callable[[], NoReturn]) -> int:
        pid = os.fork()
        if pid == 0:
            try:
                self._in_child()
                body()
            finally:
                os._exit(127)
        return pid

    def _in_child(self) -> None:
        """A child must not keep the launcher's sockets: a shim that outlives the launcher
        would otherwise hold the listening socket open and make clients hang."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        gc.disable()  # collections would touch (and so copy) every shared page
        for fd in self.owned:
            try:
                os.close(fd)
            except OSError:
                pass

    def _fork_reporting(self, conn: socket.socket, op: str, child: Child, msg: dict[str, Any]) -> None:
        r, w = os.pipe()
        self._fork(lambda: child(msg, w))
        os.close(w)
        self._await_report(conn, op, r)

    def _await_report(self, conn: socket.socket, op: str, r: int) -> None:
        pending = _Pending(conn, op)
        self.owned.add(r)
        self.sel.register(r, selectors.EVENT_READ, lambda fd: self._report(fd, pending))

    def _start(self, msg: dict[str, Any], fds: list[int]) -> None:
        try:
            zygote.spawn_shim(self.zygote, msg, fds)
        except OSError:
            # The zygote died (someone killed it): make a new one and retry once.
            self.owned.discard(self.zygote.fileno())
            self.zygote.close()
            self.zygote, self.zygote_pid = zygote.start()
            self.owned.add(self.zygote.fileno())
            zygote.spawn_shim(self.zygote, msg, fds)

    def _report(self, fd: int, pending: _Pending) -> None:
        chunk = os.read(fd, 65536)
        if chunk:
            pending.data += chunk
            return
        self.sel.unregister(fd)
        self.owned.discard(fd)
        os.close(fd)
        reply: dict[str, Any] = {"ok": True}
        errors = []
        for line in pending.data.decode(errors="replace").splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "error":
                errors.append(rest)
        if errors:
            reply = {"ok": False, "error": "; ".join(errors)}
        self._reply(pending.conn, reply)

    def _exec_child(self, msg: dict[str, Any], fds: list[int]) -> NoReturn:
        stdin, stdout, stderr, status = fds
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        for fd in (stdin, stdout, stderr):
            if fd > 2 and fd != status:
                os.close(fd)
        os.setsid()  # never in the launcher's session: its signals are not the exec's
        init.run_exec(msg, status)

    def _reap(self, _: Any) -> None:
        try:
            os.read(self.wake_r, 4096)
        except BlockingIOError:
            pass
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return


def main(argv: list[str] | None = None) -> None:
    # No argparse: every module imported here is carried by every shim forked from us.
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "--socket":
        sys.exit("usage: python -m runtime.launcher.server --socket PATH")
    socket_path = args[1]
    launcher = Launcher(socket_path)
    # Everything a child needs is imported by now; freeze it so forks share those pages.
    gc.collect()
    gc.freeze()
    print(f"launcher {os.getpid()} listening on {socket_path}", file=sys.stderr, flush=True)
    launcher.serve()
    os.unlink(socket_path)


if __name__ == "__main__":
    main()
