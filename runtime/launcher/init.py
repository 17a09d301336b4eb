"""What runs inside forked children of the launcher: container init, exec, sandbox.

``run_container`` is the one readable order of a container's setup. It runs in the
container's init process (PID 1 of a fresh PID namespace, forked by the shim), so there
is nothing to undo on failure: the mount namespace and every mount in it die with the
process. A failed step reports "failed to <step> for container <name>: <cause>" on the
``report`` fd and the process exits with ``SETUP_FAILED``.

Invariant: these functions are only ever called in a single-threaded forked child,
never in the asyncio process (setns(CLONE_NEWNS) and fork safety both need that).
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from runtime import syscalls as sc
from runtime.launcher import identity, rootfs

SETUP_FAILED = 128  # Kubernetes reports StartError with exit code 128
T = TypeVar("T")

# Sandbox namespace kinds and their setns flags; mnt and pid are per container.
SANDBOX_NAMESPACES = {"ipc": sc.CLONE_NEWIPC, "uts": sc.CLONE_NEWUTS, "net": sc.CLONE_NEWNET}
EXEC_NAMESPACES = {**SANDBOX_NAMESPACES, "pid": sc.CLONE_NEWPID, "mnt": sc.CLONE_NEWNS}


class LaunchError(Exception):
    """A setup step of a container, exec or sandbox failed."""


def step(subject: str, what: str, fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    except Exception as e:
        raise LaunchError(f"failed to {what} for {subject}: {e}") from e


def run_container(cfg: dict[str, Any], report: int, shim: socket.socket) -> NoReturn:
    """Set up and exec a container's init. ``cfg`` is the runtime's start request.

    The init joins its cgroup itself, first: a process moving its own single thread
    skips the kernel's global threadgroup lock, whose writer waits for an RCU grace
    period (measured here: 0.6 ms for four v1 hierarchies this way, 16 ms on a loaded
    host when the shim moved it). Right after unsharing its mount namespace it hands
    that namespace to the ``shim`` (see shim.py for why the shim holds it).
    """
    try:
        _setup_container(cfg, shim)
    except BaseException as e:
        _fail(report, e)
    raise AssertionError("unreachable")


def _setup_container(cfg: dict[str, Any], shim: socket.socket) -> None:
    who = f"container {cfg['name']}"
    root = cfg["rootfs"]
    step(who, "join cgroup", join_cgroup, cfg["cgroup_procs"])
    step(who, "join pod namespaces", join_namespaces, cfg["namespaces"], SANDBOX_NAMESPACES)
    step(who, "unshare mount namespace", sc.unshare, sc.CLONE_NEWNS)
    step(who, "hand the mount namespace to the shim", _send_mount_namespace, shim)
    step(who, "make mounts private", sc.mount, None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    step(who, "mount overlay", rootfs.mount_overlay, root, cfg["lowerdirs"], cfg["upperdir"], cfg["workdir"])
    step(who, "mount /proc", rootfs.mount_proc, root)
    step(who, "mount /dev", rootfs.mount_dev, root, cfg.get("shm"))
    step(who, "mount /sys", rootfs.mount_sys, root)
    # The caller's mounts after /proc, /dev and /sys (runc's order), so one under /dev
    # (/dev/termination-log, a /dev/shm volume) lands on the container's /dev, not under it.
    for m in cfg["mounts"]:
        step(who, f"bind {m['source']} to {m['destination']}", rootfs.bind, root, m["source"],
             m["destination"], bool(m.get("read_only")))
    step(who, "mask /proc and /sys paths", rootfs.mask_paths, root)
    step(who, "pivot_root", rootfs.pivot, root)
    _become_process(who, cfg)


def _send_mount_namespace(shim: socket.socket) -> None:
    fd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        socket.send_fds(shim, [b"mnt"], [fd])
    finally:
        os.close(fd)
        shim.close()


def _become_process(who: str, cfg: dict[str, Any]) -> NoReturn:
    """Shared tail of container init and exec: workdir, user, capabilities, exec."""
    user = step(who, "resolve user", identity.resolve_user, cfg.get("user") or "")
    cwd = cfg.get("cwd") or "/"
    step(who, f"enter working directory {cwd}", _enter_dir, cwd)
    keep = step(who, "drop capabilities", identity.drop_capabilities)
    step(who, "set user", identity.set_user, user)
    step(who, "limit capabilities", identity.limit_root_capabilities, keep, user)
    step(who, "set no_new_privs", sc.set_no_new_privs)
    env = identity.environment(cfg.get("env") or {}, user)
    identity.reset_signals()
    argv = cfg["argv"]
    step(who, f"exec {argv[0]}", os.execvpe, argv[0], argv, env)
    raise AssertionError("unreachable")


def _enter_dir(path: str) -> None:
    os.makedirs(path, exist_ok=True)  # Docker creates a missing WORKDIR too
    os.chdir(path)


def join_cgroup(procs_files: list[str]) -> None:
    """Move the calling (single-threaded) process into the cgroup, one file per v1 hierarchy.

    On v1 we write "0" to the ``tasks`` file beside ``cgroup.procs``: moving only the
    current thread lets the kernel skip the global threadgroup lock and the RCU grace
    period its writer waits for; for a single-threaded process that is the same move.
    """
    for path in procs_files:
        tasks = os.path.join(os.path.dirname(path), "tasks")
        with open(tasks if os.path.exists(tasks) else path, "w") as f:
            f.write("0")


def join_namespaces(paths: dict[str, str], kinds: dict[str, int]) -> None:
    """setns into each namespace file given (opened first: joining mnt changes what paths mean)."""
    fds = [(os.open(paths[kind], os.O_RDONLY | os.O_CLOEXEC), flag)
           for kind, flag in kinds.items() if paths.get(kind)]
    try:
        for fd, flag in fds:
            sc.setns(fd, flag)
    finally:
        for fd, _ in fds:
            os.close(fd)


def _fail(report: int, error: BaseException) -> NoReturn:
    message = str(error) if isinstance(error, LaunchError) else f"{type(error).__name__}: {error}"
    try:
        os.write(report, f"error {message}\n".encode())
    except OSError:
        pass
    os._exit(SETUP_FAILED)


# exec -----------------------------------------------------------------------------


def run_exec(cfg: dict[str, Any], status: int) -> NoReturn:
    """Enter a running container and run a process there; report its exit status on ``status``.

    Runs in a child of the launcher whose fds 0-2 are already the caller's stdio. It
    joins the container's cgroup and namespaces, then forks once more because a PID
    namespace only applies to children; it waits for that child and writes
    ``exit <code>`` (or ``error <message>``) to ``status``.
    """
    who = f"exec in container {cfg['name']}"
    try:
        pid = cfg["init_pid"]
        step(who, "check container is running", _check_start_time, pid, cfg["init_start"])
        step(who, "join cgroup", join_cgroup, cfg["cgroup_procs"])
        paths = {kind: f"/proc/{pid}/ns/{kind}" for kind in EXEC_NAMESPACES}
        step(who, "join container namespaces", join_namespaces, paths, EXEC_NAMESPACES)
        child = os.fork()
        if child == 0:
            try:
                if cfg.get("tty"):
                    os.setsid()
                    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
                _become_process(who, cfg)
            except BaseException as e:
                _fail(status, e)
        _, wstatus = os.waitpid(child, 0)
        os.write(status, f"exit {os.waitstatus_to_exitcode(wstatus)}\n".encode())
        os._exit(0)
    except BaseException as e:
        _fail(status, e)


def process_start_time(pid: int) -> int:
    """Field 22 of /proc/PID/stat: with the pid it identifies a process across pid reuse."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    return int(data[data.rindex(b")") + 2 :].split()[19])


def _check_start_time(pid: int, expected: int) -> None:
    try:
        actual = process_start_time(pid)
    except OSError:
        actual = -1
    if actual != expected:
        raise OSError(3, "container is not running")


# sandbox --------------------------------------------------------------------------


def run_sandbox(cfg: dict[str, Any], report: int) -> NoReturn:
    """Create a pod's net, ipc and uts namespaces and pin each with a bind mount.

    Runs in a child of the launcher that stays in the host's mount namespace, so the
    bind mounts of /proc/self/ns/* onto the pod's files are visible on the host and
    keep the namespaces alive after this process exits (no pause process).
    """
    who = f"pod sandbox {cfg['name']}"
    try:
        step(who, "unshare namespaces", sc.unshare, sc.CLONE_NEWNET | sc.CLONE_NEWIPC | sc.CLONE_NEWUTS)
        step(who, "set hostname", socket.sethostname, cfg["hostname"])
        step(who, "bring up loopback", _loopback_up)
        for kind, path in cfg["namespaces"].items():
            step(who, f"pin {kind} namespace", _pin, f"/proc/self/ns/{kind}", path)
    except BaseException as e:
        _fail(report, e)
    os._exit(0)


def _pin(source: str, path: str) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o444))
    sc.mount(source, path, None, sc.MS_BIND)


def _loopback_up() -> None:
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s.fileno(), siocgifflags, req))[1]
        fcntl.ioctl(s.fileno(), siocsifflags, struct.pack("16sH22x", b"lo", flags | iff_up))
