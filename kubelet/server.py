"""The kubelet's HTTP server (aiohttp), for the API server's log and exec proxy.

    GET /healthz
    GET /containerLogs/{namespace}/{pod}/{container}?follow&tailLines&sinceSeconds&timestamps&previous&limitBytes
    GET /exec/{namespace}/{pod}/{container}?command=..&stdin&stdout&stderr&tty   (WebSocket)

Exec speaks Kubernetes' remote-command WebSocket subprotocols v5.channel.k8s.io and
v4.channel.k8s.io: binary frames whose first byte is the channel (0 stdin, 1 stdout,
2 stderr, 3 error: a Status JSON carrying the exit code, 4 resize: {"Width","Height"});
v5 adds 255 [channel] to close a stream (stdin EOF).

Who may call: on a node of a secured cluster the server speaks TLS, the handshake requires a
client certificate from the cluster CA, and `allowed_clients` (the API server's kubelet-client
identity) must be its common name: anyone else, admins and other nodes included, gets 403 and
reaches pods only through the API server, where they are authorized. Without TLS (a loopback
development cluster) the server answers whoever can reach its address.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler, Middleware

from api.core import Pod
from api.informer import Informer
from kubelet.cri import PodRuntime
from kubelet.logs import LogOptions, follow_log
from runtime.container import ContainerError, ExecError, ExecProcess

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


def _int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    return int(value) if value and value.lstrip("-").isdigit() else None


def _status(code: int, message: str, reason: str) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": message, "reason": reason, "code": code}, status=code)


def client_common_name(request: web.Request) -> str | None:
    """The CN of the TLS client certificate the handshake verified, if any."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def only_clients(allowed: frozenset[str]) -> Middleware:
    """Middleware: 403 unless the verified client certificate names one of `allowed`."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        user = client_common_name(request)
        if user not in allowed:
            return _status(403, f'Forbidden: the kubelet serves only the API server, not {user or "anonymous"!r}; '
                                "use the API server's pods/log, pods/exec and nodes/proxy", "Forbidden")
        return await handler(request)

    return check


class KubeletServer:
    def __init__(self, pods: Informer[Pod], runtime: PodRuntime, *,
                 allowed_clients: frozenset[str] | None = None) -> None:
        self.pods = pods
        self.runtime = runtime
        self.allowed_clients = allowed_clients  # None: no TLS, no client check (loopback clusters)

    def app(self) -> web.Application:
        middlewares = [only_clients(self.allowed_clients)] if self.allowed_clients is not None else []
        app = web.Application(middlewares=middlewares)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self.logs)
        app.router.add_get("/exec/{namespace}/{pod}/{container}", self.exec)
        app.router.add_post("/exec/{namespace}/{pod}/{container}", self.exec)
        app.router.add_get("/stats/summary", self.summary)
        return app

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def summary(self, _request: web.Request) -> web.Response:
        """CPU (millicores, over a 250 ms window) and memory of the node and each pod, from cgroups."""
        first, node_first, t0 = self._sample(), _proc_cpu(), time.monotonic()
        await asyncio.sleep(0.25)
        second, node_second, t1 = self._sample(), _proc_cpu(), time.monotonic()
        elapsed = max(t1 - t0, 1e-3)
        pods: dict[str, dict[str, Any]] = {}
        for pod in self.pods.list():
            uid = pod.metadata.uid or ""
            cpu = sum(max(0, second[c][0] - first.get(c, second[c])[0]) for c in second if second[c][2] == uid)
            mem = sum(v[1] for v in second.values() if v[2] == uid)
            pods[uid] = {"namespace": pod.metadata.namespace, "name": pod.metadata.name,
                         "cpuMillis": int(cpu / 1e6 / elapsed), "memoryBytes": mem}
        meminfo = _meminfo()
        node = {"cpuMillis": int((node_second - node_first) * 1000 / (os.sysconf("SC_CLK_TCK") * elapsed)),
                "memoryBytes": meminfo.get("MemTotal", 0) - meminfo.get("MemAvailable", 0)}
        return web.json_response({"node": node, "pods": list(pods.values())})

    def _sample(self) -> dict[str, tuple[int, int, str]]:
        out = {}
        for st in self.runtime.rt.list():
            if st.phase.value == "running":
                with contextlib.suppress(ContainerError):
                    stats = self.runtime.rt.stats(st.id)
                    out[st.id] = (stats.cpu_usage_ns, stats.memory_usage, st.pod_uid)
        return out

    def _find(self, request: web.Request) -> tuple[Pod, str] | web.Response:
        ns, name, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        pod = self.pods.get(f"{ns}/{name}")
        if pod is None:
            return _status(404, f'pod "{name}" not found on this node', "NotFound")
        names = [c.name for c in [*pod.spec.containers, *(pod.spec.init_containers or [])]]
        if container in ("", "_"):
            container = pod.spec.containers[0].name
        if container not in names:
            return _status(400, f"container {container} is not valid for pod {name}", "BadRequest")
        return pod, container

    async def logs(self, request: web.Request) -> web.StreamResponse:
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        pod, name = found
        obs = self.runtime.containers(pod.metadata.uid or "")
        latest = obs.latest.get(name)
        if latest is None:
            return _status(400, f'container "{name}" in pod "{pod.metadata.name}" is waiting to start',
                           "BadRequest")
        attempt = latest.attempt
        if _flag(request, "previous"):
            if attempt == 0:
                return _status(400, f'previous terminated container "{name}" in pod "{pod.metadata.name}" '
                               "not found", "BadRequest")
            attempt -= 1
        opts = LogOptions(follow=_flag(request, "follow") and not _flag(request, "previous"),
                          tail_lines=_int(request, "tailLines"), timestamps=_flag(request, "timestamps"),
                          since_seconds=_int(request, "sinceSeconds"), limit_bytes=_int(request, "limitBytes"))
        uid, cid = pod.metadata.uid or "", latest.id

        def done() -> bool:
            cur = self.runtime.containers(uid).latest.get(name)
            return cur is None or cur.id != cid or cur.state != "running"

        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        async for chunk in follow_log(self.runtime.log_path(pod, name, attempt), opts, done=done, now=time.time()):
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    async def exec(self, request: web.Request) -> web.StreamResponse:
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        pod, name = found
        argv = request.query.getall("command", [])
        latest = self.runtime.containers(pod.metadata.uid or "").latest.get(name)
        ws = web.WebSocketResponse(protocols=PROTOCOLS, autoping=True)
        await ws.prepare(request)
        v5 = ws.ws_protocol == PROTOCOLS[0]
        tty, stdin = _flag(request, "tty"), _flag(request, "stdin")
        try:
            if not argv:
                raise ExecError("you must specify at least one command for the container")
            if latest is None or latest.state != "running":
                raise ExecError(f"container {name} is not running")
            proc = await self.runtime.rt.exec(latest.id, argv, tty=tty, stdin=stdin)
        except (ContainerError, ExecError) as e:
            await ws.send_bytes(bytes([ERROR]) + json.dumps(
                {"metadata": {}, "status": "Failure", "message": str(e), "reason": "InternalError"}).encode())
            await ws.close()
            return ws
        try:
            await self._relay(ws, proc, v5=v5)
        finally:
            proc.close()
        return ws

    async def _relay(self, ws: web.WebSocketResponse, proc: ExecProcess, *, v5: bool) -> None:
        async def pump(stream: str, channel: int) -> None:
            while chunk := await proc.read(stream):
                await ws.send_bytes(bytes([channel]) + chunk)

        async def feed() -> None:
            async for msg in ws:
                if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    continue
                data: bytes = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                if not data:
                    continue
                channel, payload = data[0], data[1:]
                if channel == STDIN and proc.stdin is not None:
                    await proc.write(payload)
                elif channel == RESIZE and proc.tty:
                    size: dict[str, Any] = json.loads(payload or b"{}")
                    with contextlib.suppress(ExecError, OSError):
                        proc.resize(int(size.get("Height", 24)), int(size.get("Width", 80)))
                elif channel == CLOSE and payload[:1] == bytes([STDIN]):
                    proc.close_stdin()

        feeder = asyncio.create_task(feed(), name="exec-stdin")
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(pump("stdout", STDOUT))
                if not proc.tty:
                    tg.create_task(pump("stderr", STDERR))
            try:
                code = await proc.wait()
                status: dict[str, Any] = {"metadata": {}, "status": "Success"} if code == 0 else {
                    "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                    "message": f"command terminated with non-zero exit code: exit status {code}",
                    "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
            except ExecError as e:
                status = {"metadata": {}, "status": "Failure", "message": str(e), "reason": "InternalError"}
            await ws.send_bytes(bytes([ERROR]) + json.dumps(status).encode())
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
            await ws.close()


def _proc_cpu() -> int:
    """Busy clock ticks of the whole machine (all of /proc/stat's cpu line but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)


def _meminfo() -> dict[str, int]:
    with open("/proc/meminfo") as f:
        return {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if line.split()[1].isdigit()}
