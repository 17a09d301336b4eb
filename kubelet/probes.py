"""Liveness, readiness and startup probes: a pure state machine plus the runners.

Timing follows Kubernetes: nothing runs before `initialDelaySeconds` after the container
started; then one probe every `periodSeconds`, each bounded by `timeoutSeconds`; the result
flips to failure after `failureThreshold` consecutive failures and back to success after
`successThreshold` consecutive successes. Liveness and readiness wait for the startup probe
(if any) to succeed. Readiness starts as failure, liveness and startup as unknown-success /
not-started.

httpGet and tcpSocket connect from a socket created inside the pod's network namespace
(a short-lived thread joins it with setns, makes the socket, and the thread ends), so a
probe reaches the pod whether or not the host can route to the pod's IP.

A `ProbeManager` owns one task per (container id, probe kind), all in the kubelet's
TaskGroup; `sync_pod` starts the missing ones and cancels those of containers that are gone.
When a result changes it calls `on_change(pod_uid)`: the pod worker reacts (level-triggered).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from api.core import Probe
from runtime import syscalls as sc

log = logging.getLogger(__name__)

Kind = Literal["liveness", "readiness", "startup"]


@dataclass(frozen=True, slots=True)
class Timing:
    initial_delay: float = 0
    timeout: float = 1
    period: float = 10
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def of(cls, probe: Probe) -> Timing:
        return cls(initial_delay=probe.initial_delay_seconds or 0, timeout=probe.timeout_seconds or 1,
                   period=probe.period_seconds or 10, success_threshold=probe.success_threshold or 1,
                   failure_threshold=probe.failure_threshold or 3)


@dataclass(frozen=True, slots=True)
class ProbeState:
    ok: bool
    successes: int = 0
    failures: int = 0


def initial_state(kind: Kind) -> ProbeState:
    return ProbeState(ok=kind == "liveness")


def record(state: ProbeState, success: bool, timing: Timing) -> ProbeState:
    """The state after one more probe result (pure)."""
    if success:
        n = state.successes + 1
        return ProbeState(ok=state.ok or n >= timing.success_threshold, successes=n, failures=0)
    n = state.failures + 1
    return ProbeState(ok=state.ok and n < timing.failure_threshold, successes=0, failures=n)


# ---------------------------------------------------------------- runners


def _socket_in_netns(netns: Path | None) -> socket.socket:
    if netns is None:
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    box: list[socket.socket | BaseException] = []

    def work() -> None:
        try:
            own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            target = os.open(netns, os.O_RDONLY)
            try:
                sc.setns(target, sc.CLONE_NEWNET)
                try:
                    box.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                finally:
                    sc.setns(own, sc.CLONE_NEWNET)
            finally:
                os.close(own)
                os.close(target)
        except BaseException as e:
            box.append(e)

    t = threading.Thread(target=work, name="netns-socket")
    t.start()
    t.join()
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


async def connect(netns: Path | None, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = _socket_in_netns(netns)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


def _dial_error(host: str, port: int, err: OSError) -> str:
    """Go's net.Dial wording, which Kubernetes' probe messages carry."""
    why = {errno.ECONNREFUSED: "connection refused", errno.EHOSTUNREACH: "no route to host",
           errno.ENETUNREACH: "network is unreachable"}.get(err.errno or 0, (err.strerror or str(err)).lower())
    return f"dial tcp {host}:{port}: connect: {why}"


Result = tuple[bool, str]  # (success, output: what Kubernetes' "... probe failed: <output>" shows)


async def tcp_probe(netns: Path | None, host: str, port: int) -> Result:
    try:
        _, writer = await connect(netns, host, port)
    except OSError as e:
        return False, _dial_error(host, port, e)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, ""


async def http_probe(netns: Path | None, host: str, port: int, path: str, headers: dict[str, str]) -> Result:
    url = f"http://{host}:{port}{path or '/'}"
    try:
        reader, writer = await connect(netns, host, port)
    except OSError as e:
        return False, f'Get "{url}": {_dial_error(host, port, e)}'
    try:
        lines = [f"GET {path or '/'} HTTP/1.0", f"Host: {host}:{port}", "User-Agent: kube-probe/1.30",
                 *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        writer.write("\r\n".join(lines).encode())
        await writer.drain()
        status = await reader.readline()
        parts = status.split()
        if len(parts) >= 2 and parts[1].isdigit():
            code = int(parts[1])
            return (True, "") if 200 <= code < 400 else (False, f"HTTP probe failed with statuscode: {code}")
        return False, f'Get "{url}": malformed HTTP response {status[:64]!r}'
    except OSError as e:
        return False, f'Get "{url}": {(e.strerror or str(e)).lower()}'
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


ExecFn = Callable[[str, list[str]], Awaitable[tuple[int, str]]]  # (container id, argv) -> (exit code, output)


def _port(value: int | str, named: dict[str, int]) -> int:
    if isinstance(value, int):
        return value
    return int(value) if value.isdigit() else named.get(value, 0)


async def run_probe(probe: Probe, *, container_id: str, exec_fn: ExecFn, netns: Path | None, pod_ip: str | None,
                    named_ports: dict[str, int], timeout: float) -> Result:
    """One probe attempt: (passed, output). Any error or timeout is a failure, worded as the
    kubelet words it (`HTTP probe failed with statuscode: 500`, `dial tcp ...: connection refused`,
    an exec probe's own output)."""
    timed_out = "probe timed out"
    try:
        async with asyncio.timeout(timeout):
            if probe.exec is not None:
                argv = list(probe.exec.command or [])
                timed_out = f'command "{" ".join(argv)}" timed out'
                code, output = await exec_fn(container_id, argv)
                return code == 0, output
            if probe.http_get is not None:
                g = probe.http_get
                headers = {h.name: h.value for h in g.http_headers or []}
                host, port = g.host or pod_ip or "127.0.0.1", _port(g.port, named_ports)
                timed_out = (f'Get "http://{host}:{port}{g.path or "/"}": context deadline exceeded '
                             "(Client.Timeout exceeded while awaiting headers)")
                return await http_probe(netns, host, port, g.path or "/", headers)
            if probe.tcp_socket is not None:
                t = probe.tcp_socket
                host, port = t.host or pod_ip or "127.0.0.1", _port(t.port, named_ports)
                timed_out = f"dial tcp {host}:{port}: i/o timeout"
                return await tcp_probe(netns, host, port)
    except TimeoutError:
        return False, timed_out
    except Exception as e:  # a probe that cannot run fails; it must never kill the kubelet
        log.debug("probe of container %s failed to run: %s", container_id, e)
        return False, str(e)
    return True, ""  # grpc and unknown handlers: not supported, treated as passing


# ---------------------------------------------------------------- manager

OnFailure = Callable[["_Target", Kind, str], None]  # (target, probe kind, output) after a failed attempt


@dataclass(slots=True)
class _Target:
    pod_uid: str
    container_id: str
    container_name: str
    probe: Probe
    started_at: float  # wall clock
    netns: Path | None
    pod_ip: str | None
    named_ports: dict[str, int]


class ProbeManager:
    """Probe workers of every running container on the node (see module doc)."""

    def __init__(self, tg: asyncio.TaskGroup, *, exec_fn: ExecFn, on_change: Callable[[str], None],
                 clock: Callable[[], float], on_failure: OnFailure | None = None) -> None:
        self._tg = tg
        self._exec = exec_fn
        self._on_change = on_change
        self._on_failure = on_failure
        self._clock = clock
        self._tasks: dict[tuple[str, Kind], asyncio.Task[None]] = {}
        self._state: dict[tuple[str, Kind], ProbeState] = {}
        self._by_pod: dict[str, set[str]] = {}

    def ensure(self, kind: Kind, target: _Target | None = None, **kwargs: object) -> None:
        t = target or _Target(**kwargs)  # type: ignore[arg-type]
        key = (t.container_id, kind)
        if key in self._tasks:
            return
        self._state[key] = initial_state(kind)
        self._by_pod.setdefault(t.pod_uid, set()).add(t.container_id)
        self._tasks[key] = self._tg.create_task(self._loop(kind, t), name=f"probe-{kind}-{t.container_id[:12]}")

    def keep_only(self, pod_uid: str, container_ids: set[str]) -> None:
        """Stop the probes of this pod's containers not in `container_ids`."""
        for cid in self._by_pod.get(pod_uid, set()) - container_ids:
            for kind in ("liveness", "readiness", "startup"):
                task = self._tasks.pop((cid, kind), None)
                if task is not None:
                    task.cancel()
                self._state.pop((cid, kind), None)
        if container_ids:
            self._by_pod[pod_uid] = self._by_pod.get(pod_uid, set()) & container_ids
        else:
            self._by_pod.pop(pod_uid, None)

    def result(self, container_id: str, kind: Kind) -> bool | None:
        """The current result, or None when no such probe runs."""
        st = self._state.get((container_id, kind))
        return None if st is None else st.ok

    def started(self, container_id: str) -> bool:
        r = self.result(container_id, "startup")
        return True if r is None else r

    def unhealthy(self, container_id: str) -> bool:
        """Liveness failed, or the startup probe failed for good."""
        return self.failed_kind(container_id) is not None

    def failed_kind(self, container_id: str) -> Kind | None:
        """"liveness" or "startup" when that probe says the container must be restarted, else None."""
        if self.result(container_id, "liveness") is False:
            return "liveness"
        st = self._state.get((container_id, "startup"))
        t = self._tasks.get((container_id, "startup"))
        if st is not None and not st.ok and t is not None and t.done():
            return "startup"
        return None

    def cancel_all(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    async def _loop(self, kind: Kind, t: _Target) -> None:
        timing = Timing.of(t.probe)
        key = (t.container_id, kind)
        delay = t.started_at + timing.initial_delay - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)
        while True:
            if kind != "startup" and not self.started(t.container_id):
                await asyncio.sleep(min(timing.period, 1.0))
                continue
            ok, output = await run_probe(t.probe, container_id=t.container_id, exec_fn=self._exec, netns=t.netns,
                                         pod_ip=t.pod_ip, named_ports=t.named_ports, timeout=timing.timeout)
            before = self._state.get(key)
            if before is None:
                return
            if not ok and self._on_failure is not None:
                self._on_failure(t, kind, output)  # every failed attempt, as the kubelet's Unhealthy events
            after = record(before, ok, timing)
            self._state[key] = after
            if after.ok != before.ok:
                log.info("%s probe of container %s: %s", kind, t.container_id[:12],
                         "succeeded" if after.ok else "failed")
                self._on_change(t.pod_uid)
            if kind == "startup" and after.ok:
                return  # a passed startup probe is never run again
            if kind == "startup" and not after.ok and after.failures >= timing.failure_threshold:
                self._on_change(t.pod_uid)
                return
            await asyncio.sleep(timing.period)


Target = _Target
