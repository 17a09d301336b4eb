"""The container runtime the kubelet talks to.

    rt = await Runtime.open("/var/lib/kubelite", cgroup_root="/sys/fs/cgroup")
    sb = await rt.create_sandbox("uid-1", "web-0", hostname="web-0")
    c = await rt.create_container(sb, ContainerSpec(name="web", argv=[...], lowerdirs=[...]))
    await rt.start(c.id); await rt.stop(c.id, grace=30); await rt.remove(c.id)

Ownership: containers belong to their shims, not to this object. ``Runtime.open``
re-adopts whatever ``<root>/containers/*/state.json`` says is running; ``close``
forgets them without stopping anything. Exits are noticed through a pidfd on each
shim (pollable for non-children), so nothing here depends on being anyone's parent.
This module never forks: sandboxes, containers and execs are forked by the launcher.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import secrets
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from runtime.cgroups import Cgroup, CgroupError, CgroupStats, open_cgroup
from runtime.container import sandbox as sandboxes
from runtime.container import state as states
from runtime.container.exec import ExecProcess
from runtime.container.sandbox import Sandbox, SandboxError
from runtime.container.spec import ContainerSpec, Mount
from runtime.container.state import ContainerState, Phase
from runtime.launcher.client import LauncherClient, LauncherError
from runtime.launcher.init import SETUP_FAILED, process_start_time
from runtime.launcher.logwriter import DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE

T = TypeVar("T")


class ContainerError(Exception):
    """A runtime operation on a container failed; the message names the container and step."""


class Runtime:
    def __init__(self, root_dir: Path | str, *, cgroup_root: Path | str = "/sys/fs/cgroup",
                 cgroup_parent: str = "kubelite", cgroup_version: int | None = None,
                 log_max_size: int = DEFAULT_MAX_SIZE, log_max_files: int = DEFAULT_MAX_FILES) -> None:
        """``log_max_size`` / ``log_max_files``: container log rotation, as the kubelet's
        containerLogMaxSize / containerLogMaxFiles (0 turns rotation off)."""
        self.root = Path(root_dir)
        self.cgroup_root = Path(cgroup_root)
        self.cgroup_parent = cgroup_parent.strip("/")
        self.cgroup_version = cgroup_version
        self.log_max_size, self.log_max_files = log_max_size, log_max_files
        self.launcher = LauncherClient(self.root / "launcher.sock", log_path=self.root / "launcher.log")
        self._states: dict[str, ContainerState] = {}
        self._sandboxes: dict[str, Sandbox] = {}
        self._exited: dict[str, asyncio.Event] = {}
        self._exit_fds: dict[str, int] = {}

    @classmethod
    async def open(cls, root_dir: Path | str, **kwargs: object) -> Runtime:
        """A runtime over ``root_dir`` with every sandbox and container on disk re-adopted."""
        rt = cls(root_dir, **kwargs)  # type: ignore[arg-type]
        rt._load()
        await rt.launcher.ensure_running()
        for st in list(rt._states.values()):
            if st.phase is Phase.RUNNING:
                rt._watch(st)
        return rt

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop watching; containers, shims and the launcher keep running."""
        loop = asyncio.get_running_loop()
        for cid, fd in list(self._exit_fds.items()):
            loop.remove_reader(fd)
            os.close(fd)
            del self._exit_fds[cid]

    async def shutdown_launcher(self) -> None:
        await self.launcher.shutdown()

    def _load(self) -> None:
        for d in ("pods", "containers"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        for pod_dir in (self.root / "pods").iterdir():
            if (pod_dir / "sandbox.json").exists():
                sb = sandboxes.load(pod_dir)
                self._sandboxes[sb.pod_uid] = sb
        for cdir in (self.root / "containers").iterdir():
            if (cdir / "state.json").exists():
                st = states.load(cdir / "state.json")
                self._states[st.id] = st
                self._exited[st.id] = asyncio.Event()
                if st.phase is Phase.EXITED:
                    self._exited[st.id].set()

    # sandboxes -----------------------------------------------------------------

    async def create_sandbox(self, pod_uid: str, name: str, *, hostname: str,
                             dns_servers: list[str] | None = None, dns_searches: list[str] | None = None,
                             hosts_entries: list[tuple[str, str]] | None = None) -> Sandbox:
        """Pod namespaces (net with lo up, ipc, uts with ``hostname``) pinned under the pod dir."""
        if pod_uid in self._sandboxes:
            return self._sandboxes[pod_uid]
        sb = Sandbox(pod_uid=pod_uid, name=name, hostname=hostname, dir=self.root / "pods" / pod_uid,
                     dns_servers=list(dns_servers or []), dns_searches=list(dns_searches or []),
                     hosts_entries=list(hosts_entries or []))
        try:
            sandboxes.prepare(sb)
            self._pod_cgroup(pod_uid).create()
            await self.launcher.request({
                "op": "sandbox", "name": name, "hostname": hostname,
                "namespaces": {k: str(sb.ns_path(k)) for k in sandboxes.NAMESPACES},
            })
        except (LauncherError, CgroupError, SandboxError) as e:
            await asyncio.to_thread(self._destroy_sandbox, sb)
            raise SandboxError(f"failed to create sandbox for pod {name}: {e}") from e
        self._sandboxes[pod_uid] = sb
        return sb

    def sandboxes(self) -> list[Sandbox]:
        return list(self._sandboxes.values())

    async def remove_sandbox(self, pod_uid: str, *, grace: float = 0) -> None:
        """Stop and remove the pod's containers, then its namespaces, cgroup and dirs."""
        sb = self._sandboxes.get(pod_uid)
        if sb is None:
            return
        for st in self.list(pod_uid=pod_uid):
            await self.remove(st.id, grace=grace)
        await asyncio.to_thread(self._destroy_sandbox, sb)
        del self._sandboxes[pod_uid]

    def _destroy_sandbox(self, sb: Sandbox) -> None:
        sandboxes.destroy(sb)
        try:
            self._pod_cgroup(sb.pod_uid).remove()
        except CgroupError:
            pass  # a pod cgroup still busy is harmless and named, so findable

    def _pod_cgroup(self, pod_uid: str) -> Cgroup:
        return open_cgroup(self.cgroup_root, f"{self.cgroup_parent}/pod-{pod_uid}",
                           version=self.cgroup_version)

    # containers ----------------------------------------------------------------

    async def create_container(self, sandbox: Sandbox, spec: ContainerSpec) -> ContainerState:
        """Record a container (state ``created``), make its dirs and its cgroup; nothing runs yet.

        The cgroup is made and limited here rather than at start, as CRI's CreateContainer
        does, so that ``start`` is only the launch.
        """
        cid = secrets.token_hex(16)
        cdir = self.root / "containers" / cid
        st = ContainerState(
            id=cid, pod_uid=sandbox.pod_uid, spec=spec, created_at_ns=time.time_ns(),
            cgroup=f"{self.cgroup_parent}/pod-{sandbox.pod_uid}/{cid}",
            log_path=spec.log_path or str(cdir / "container.log"),
        )
        cg = self._cgroup(st)
        try:
            os.mkdir(cdir)
            for sub in ("upper", "work", "rootfs"):
                os.mkdir(f"{cdir}/{sub}")
            self._step(st, "create cgroup", cg.create)
            self._step(st, "apply resource limits", cg.apply, spec.resources)
        except (OSError, ContainerError) as e:
            await asyncio.to_thread(self._discard, cg, cdir)
            if isinstance(e, ContainerError):
                raise
            raise ContainerError(f"failed to create directories for container {spec.name}: {e}") from e
        self._save(st)
        self._exited[cid] = asyncio.Event()
        return st

    @staticmethod
    def _discard(cg: Cgroup, cdir: Path) -> None:
        try:
            cg.remove()
        except CgroupError:
            pass
        shutil.rmtree(cdir, ignore_errors=True)

    async def start(self, container_id: str) -> ContainerState:
        """Hand the container to the launcher and wait until its init has exec'd (or failed).

        The shim and the init report on a pipe of ours ("shim N", "pid N", "error ...";
        EOF once the init execs), and tell of the exit on another, which ``_watch`` polls.
        """
        st = self._get(container_id)
        if st.phase is not Phase.CREATED:
            raise ContainerError(f"cannot start container {st.name}: it is {st.phase}")
        sb = self._sandboxes.get(st.pod_uid)
        if sb is None:
            raise ContainerError(f"cannot start container {st.name}: pod {st.pod_uid} has no sandbox")
        report_r, report_w = os.pipe()
        exit_r, exit_w = os.pipe()
        try:
            try:
                await self.launcher.request(self._start_request(st, sb), fds=[report_w, exit_w])
            finally:
                os.close(report_w)
                os.close(exit_w)
            report = await _read_to_eof(report_r)
        except LauncherError as e:
            os.close(exit_r)
            self._record_start_failure(st, str(e))
            raise ContainerError(f"failed to start container {st.name}: {e}") from e
        pids: dict[str, int] = {}
        errors: builtins.list[str] = []
        for line in report.splitlines():
            kind, _, rest = line.partition(" ")
            if kind in ("shim", "pid"):
                pids[kind] = int(rest)
            elif kind == "error":
                errors.append(rest)
        if not errors and len(pids) < 2:
            errors.append("the shim went away before the container's init was running")
        if errors:
            os.close(exit_r)
            self._record_start_failure(st, "; ".join(errors))
            raise ContainerError(f"failed to start container {st.name}: {'; '.join(errors)}")
        init_pid, shim_pid = pids["pid"], pids["shim"]
        try:
            init_start: int | None = process_start_time(init_pid)
        except OSError:
            init_start = None  # already gone: /bin/true can exit before we look
        st = st.to(Phase.RUNNING, started_at_ns=time.time_ns(), shim_pid=shim_pid,
                   init_pid=init_pid, init_start=init_start,
                   extra={"shim_start": self._start_time_or_none(shim_pid)})
        self._save(st)
        self._watch(st, exit_r)
        return st

    def _start_request(self, st: ContainerState, sb: Sandbox) -> dict[str, object]:
        cdir = self._dir(st.id)
        mounts = [Mount(src, dst, read_only=True) for src, dst in sb.etc_mounts()] + list(st.spec.mounts)
        return {
            "op": "start", "name": st.name, "rootfs": str(cdir / "rootfs"),
            "lowerdirs": st.spec.lowerdirs, "upperdir": st.spec.upperdir or str(cdir / "upper"),
            "workdir": st.spec.overlay_workdir or str(cdir / "work"),
            "namespaces": {k: str(sb.ns_path(k)) for k in sandboxes.NAMESPACES},
            "cgroup_procs": self._cgroup(st).procs_files(),
            "mounts": [{"source": m.source, "destination": m.destination, "read_only": m.read_only}
                       for m in mounts],
            "argv": st.spec.argv, "env": st.spec.env, "cwd": st.spec.working_dir, "user": st.spec.user,
            "log_path": st.log_path, "log_max_size": self.log_max_size, "log_max_files": self.log_max_files,
            "exit_path": str(cdir / "exit.json"), "shm": str(sb.shm_path),
        }

    def _record_start_failure(self, st: ContainerState, message: str) -> None:
        st = st.to(Phase.EXITED, finished_at_ns=time.time_ns(), exit_code=SETUP_FAILED,
                   reason="StartError", message=message)
        self._save(st)
        self._exited[st.id].set()

    async def stop(self, container_id: str, *, grace: float = 10.0) -> ContainerState:
        """SIGTERM to the container's PID 1, then after ``grace`` seconds SIGKILL to its whole cgroup."""
        st = self._get(container_id)
        if st.phase is Phase.RUNNING:
            self._signal_init(st, signal.SIGTERM)
            if not await self.wait(container_id, timeout=grace):
                await asyncio.to_thread(self._step, st, "kill processes", self._cgroup(st).kill_all)
                if not await self.wait(container_id, timeout=10):
                    raise ContainerError(f"failed to stop container {st.name}: still running after SIGKILL")
        elif st.phase is Phase.CREATED:
            self._record_start_failure(st, "stopped before it started")
        return self._get(container_id)

    def _signal_init(self, st: ContainerState, sig: int) -> None:
        # The pid is only trusted while its start time matches: pids get reused.
        if st.init_pid is None or self._start_time_or_none(st.init_pid) != st.init_start:
            return
        try:
            os.kill(st.init_pid, sig)
        except ProcessLookupError:
            pass

    async def wait(self, container_id: str, *, timeout: float | None = None) -> bool:
        """True once the container has exited; False if ``timeout`` passed first."""
        self._get(container_id)
        try:
            await asyncio.wait_for(self._exited[container_id].wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def remove(self, container_id: str, *, grace: float = 0) -> None:
        """Stop if needed, then delete its cgroup, dirs and state (and its log if ours)."""
        st = self._get(container_id)
        if st.phase is not Phase.EXITED:
            await self.stop(container_id, grace=grace)
        cg = self._cgroup(st)
        await asyncio.to_thread(self._step, st, "remove cgroup", cg.remove)
        await asyncio.to_thread(shutil.rmtree, self._dir(container_id), True)
        del self._states[container_id]
        del self._exited[container_id]

    def status(self, container_id: str) -> ContainerState:
        return self._get(container_id)

    def list(self, *, pod_uid: str | None = None) -> list[ContainerState]:
        return [s for s in self._states.values() if pod_uid is None or s.pod_uid == pod_uid]

    def log_path(self, container_id: str) -> Path:
        return Path(self._get(container_id).log_path)

    def stats(self, container_id: str) -> CgroupStats:
        st = self._get(container_id)
        return self._step(st, "read stats", self._cgroup(st).stats)

    async def exec(self, container_id: str, argv: builtins.list[str], *, tty: bool = False, stdin: bool = False,
                   env: dict[str, str] | None = None, user: str | None = None,
                   workdir: str | None = None) -> ExecProcess:
        """Run ``argv`` in the running container's namespaces and cgroup (see ExecProcess)."""
        st = self._get(container_id)
        if st.phase is not Phase.RUNNING or st.init_start is None:
            raise ContainerError(f"cannot exec in container {st.name}: it is not running")
        parent: builtins.list[int] = []
        child: builtins.list[int] = []
        try:
            if tty:
                master, slave = os.openpty()
                parent, child = [master], [slave, slave, slave]
            else:
                for i in range(3):
                    r, w = os.pipe()
                    if i == 0 and not stdin:
                        os.close(w)  # stdin at EOF from the start
                        w = -1
                    parent.append(w if i == 0 else r)
                    child.append(r if i == 0 else w)
            status_r, status_w = os.pipe()
            parent.append(status_r)
            child.append(status_w)
            reply = await self.launcher.request({
                "op": "exec", "name": st.name, "init_pid": st.init_pid, "init_start": st.init_start,
                "cgroup_procs": self._cgroup(st).procs_files(), "argv": argv,
                "env": {**st.spec.env, **(env or {})}, "cwd": workdir or st.spec.working_dir,
                "user": st.spec.user if user is None else user, "tty": tty,
            }, fds=child)
        except (OSError, LauncherError) as e:
            for fd in parent:
                if fd >= 0:
                    os.close(fd)
            raise ContainerError(f"failed to exec in container {st.name}: {e}") from e
        finally:
            for fd in set(child):
                os.close(fd)
        if tty:
            return ExecProcess(pid=reply["pid"], tty=True, stdin=parent[0], stdout=os.dup(parent[0]),
                               stderr=None, status=parent[1])
        return ExecProcess(pid=reply["pid"], tty=False, stdin=parent[0] if stdin else None,
                           stdout=parent[1], stderr=parent[2], status=parent[3])

    # exits -----------------------------------------------------------------------

    def _watch(self, st: ContainerState, exit_fd: int | None = None) -> None:
        """Call ``_on_exit`` when the shim is done (at once if it already is).

        ``exit_fd`` is the exit pipe of a container this runtime started: the shim writes
        to it once ``exit.json`` is on disk, a little before it exits. A re-adopted
        container has no such pipe; a pidfd on its shim (pollable for non-children)
        serves instead.
        """
        loop = asyncio.get_running_loop()
        if exit_fd is not None:
            self._exit_fds[st.id] = exit_fd
            loop.add_reader(exit_fd, self._on_exit, st.id)
            return
        shim_start = st.extra.get("shim_start")
        try:
            assert st.shim_pid is not None
            fd = os.pidfd_open(st.shim_pid)
        except (ProcessLookupError, AssertionError):
            loop.call_soon(self._on_exit, st.id)
            return
        if shim_start is not None and self._start_time_or_none(st.shim_pid) != shim_start:
            os.close(fd)  # the pid now belongs to someone else: our shim is long gone
            loop.call_soon(self._on_exit, st.id)
            return
        self._exit_fds[st.id] = fd
        loop.add_reader(fd, self._on_exit, st.id)

    def _on_exit(self, container_id: str) -> None:
        fd = self._exit_fds.pop(container_id, None)
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
        st = self._states.get(container_id)
        if st is None or st.phase is not Phase.RUNNING:
            return
        record = self._read_exit(container_id)
        if record is None:
            st = st.to(Phase.EXITED, finished_at_ns=time.time_ns(), exit_code=255, reason="Unknown",
                       message="the container's shim died without recording an exit status")
        else:
            code = int(record["exit_code"])
            oom = False
            if code != 0:
                try:
                    oom = self._cgroup(st).stats().oom_kills > 0
                except (OSError, CgroupError):
                    pass
            reason = "OOMKilled" if oom and code != 0 else "Completed" if code == 0 else "Error"
            st = st.to(Phase.EXITED, finished_at_ns=int(record["finished_at_ns"]), exit_code=code,
                       reason=reason)
        self._save(st)
        self._exited[container_id].set()

    def _read_exit(self, container_id: str) -> dict[str, int] | None:
        try:
            with open(self._dir(container_id) / "exit.json") as f:
                data: dict[str, int] = json.load(f)
                return data
        except (OSError, ValueError):
            return None

    # helpers -----------------------------------------------------------------------

    def _get(self, container_id: str) -> ContainerState:
        try:
            return self._states[container_id]
        except KeyError:
            raise ContainerError(f"no such container {container_id}") from None

    def _dir(self, container_id: str) -> Path:
        return self.root / "containers" / container_id

    def _save(self, st: ContainerState) -> None:
        states.save(st, self._dir(st.id) / "state.json")
        self._states[st.id] = st

    def _cgroup(self, st: ContainerState) -> Cgroup:
        return open_cgroup(self.cgroup_root, st.cgroup, version=self.cgroup_version)

    @staticmethod
    def _step(st: ContainerState, what: str, fn: Callable[..., T], *args: object) -> T:
        try:
            return fn(*args)
        except (OSError, CgroupError) as e:
            raise ContainerError(f"failed to {what} for container {st.name}: {e}") from e

    @staticmethod
    def _start_time_or_none(pid: int) -> int | None:
        try:
            return process_start_time(pid)
        except (OSError, ValueError, IndexError):
            return None


async def _read_to_eof(fd: int) -> str:
    """Everything written to the pipe ``fd`` until its last writer closes it; closes ``fd``."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if data:
            chunks.append(data)
        elif not done.done():
            done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return b"".join(chunks).decode(errors="replace")
