"""Background processes of a local cluster, each with a pid file and a log file.

A daemon is started in its own session (so a terminal's Ctrl-C does not reach it) and
stopped with SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def start(name: str, argv: list[str], state_dir: Path, *, env: dict[str, str] | None = None) -> int:
    log = open(state_dir / f"{name}.log", "ab")  # handed to the child, closed here after the fork
    proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, **(env or {})})
    log.close()
    (state_dir / f"{name}.pid").write_text(str(proc.pid))
    return proc.pid


def pid_of(name: str, state_dir: Path) -> int | None:
    try:
        pid = int((state_dir / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def running(name: str, state_dir: Path) -> bool:
    return pid_of(name, state_dir) is not None


def stop(name: str, state_dir: Path, *, grace: float = 10.0) -> None:
    pid = pid_of(name, state_dir)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    (state_dir / f"{name}.pid").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return status.read_text().split(") ", 1)[1][0] != "Z"
    return False
