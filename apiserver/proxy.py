"""Proxy of pods/{name}/log and pods/{name}/exec to the kubelet of the pod's node.

    client --GET .../pods/web/log?follow=true--> apiserver --GET /containerLogs/ns/web/c--> kubelet
    client ==WebSocket .../pods/web/exec=======> apiserver ==WebSocket /exec/ns/web/c=====> kubelet

The kubelet is found from the pod's `spec.nodeName`: that Node's InternalIP and
`status.daemonEndpoints.kubeletEndpoint.Port`. Logs are streamed chunk by chunk (a
`follow` request stays open as long as the kubelet's does). Exec negotiates Kubernetes'
remote-command subprotocols (v5.channel.k8s.io, v4.channel.k8s.io) with the client, opens
the same one to the kubelet and relays frames both ways untouched; whichever side closes
first closes the other.

`GET /api/v1/nodes/{name}/proxy/stats/summary` (what `kubelite top` reads) is passed through
the same way: clients never talk to a kubelet directly.

On a secured server (`kubelet_ssl` given) the kubelet is reached over https: its serving
certificate must chain to the cluster CA and name the node's address, and the API server
presents its kubelet-client certificate, the only client a kubelet accepts (see
apiserver/auth/kubeletcert.py). Without security (loopback development clusters) it is plain
http, as the kubelet then serves.

The handlers take the registry reads as arguments so that this module knows nothing of
storage: `get_pod(namespace, name)` and `get_node(name)` return the stored objects as dicts
and raise `api.errors.NotFound`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from api import errors

GetPod = Callable[[str, str], Awaitable[dict[str, Any]]]
GetNode = Callable[[str], Awaitable[dict[str, Any]]]
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
LOG_PARAMS = ("follow", "tailLines", "sinceSeconds", "timestamps", "previous", "limitBytes")
EXEC_PARAMS = ("stdin", "stdout", "stderr", "tty")
NODE_PROXY_PATHS = ("stats/summary", "healthz")


async def kubelet_target(get_pod: GetPod, get_node: GetNode, namespace: str, name: str,
                         container: str | None, *, secure: bool = False) -> tuple[str, str]:
    """(kubelet base URL, container name) for the pod; errors as the API reports them."""
    pod = await get_pod(namespace, name)
    spec = pod.get("spec") or {}
    node_name = spec.get("nodeName")
    if not node_name:
        raise errors.BadRequest(f'pod "{name}" does not have a host assigned')
    containers = [c.get("name") for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])]
    if not container:
        if len(spec.get("containers") or []) != 1:
            names = " ".join(c.get("name", "") for c in spec.get("containers") or [])
            raise errors.BadRequest(f"a container name must be specified for pod {name}, choose one of: [{names}]")
        container = containers[0]
    elif container not in containers:
        raise errors.BadRequest(f"container {container} is not valid for pod {name}")
    return await kubelet_url(get_node, node_name, secure=secure), str(container)


async def kubelet_url(get_node: GetNode, node_name: str, *, secure: bool) -> str:
    """The base URL of a node's kubelet, from its Node status (InternalIP, kubeletEndpoint)."""
    node = await get_node(node_name)
    status = node.get("status") or {}
    ip = next((a.get("address") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), None)
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not ip or not port:
        raise errors.ServiceUnavailable(f"node {node_name} has not reported its kubelet's address yet")
    host = f"[{ip}]" if ":" in ip else ip
    return f"{'https' if secure else 'http'}://{host}:{port}"


async def proxy_log(request: web.Request, get_pod: GetPod, get_node: GetNode, *, namespace: str,
                    name: str, kubelet_ssl: ssl.SSLContext | None = None) -> web.StreamResponse:
    """GET /api/v1/namespaces/{namespace}/pods/{name}/log, streamed from the kubelet."""
    base, container = await kubelet_target(get_pod, get_node, namespace, name, request.query.get("container"),
                                           secure=kubelet_ssl is not None)
    params = {k: request.query[k] for k in LOG_PARAMS if k in request.query}
    return await _stream_get(request, f"{base}/containerLogs/{namespace}/{name}/{container}", params, kubelet_ssl)


async def proxy_node(request: web.Request, get_node: GetNode, *, node_name: str, path: str,
                     kubelet_ssl: ssl.SSLContext | None = None) -> web.StreamResponse:
    """GET /api/v1/nodes/{name}/proxy/{path}: the kubelet's read-only endpoints (stats/summary, healthz)."""
    if path not in NODE_PROXY_PATHS:
        raise errors.NotFound(f"the node proxy serves only {', '.join(NODE_PROXY_PATHS)}")
    base = await kubelet_url(get_node, node_name, secure=kubelet_ssl is not None)
    return await _stream_get(request, f"{base}/{path}", {}, kubelet_ssl)


async def _stream_get(request: web.Request, url: str, params: dict[str, str],
                      kubelet_ssl: ssl.SSLContext | None) -> web.StreamResponse:
    timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=None)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            upstream = await session.get(url, params=params, ssl=kubelet_ssl or True)
        except aiohttp.ClientError as e:
            raise errors.ServiceUnavailable(f"cannot reach the kubelet at {url}: {e}") from e
        async with upstream:
            if upstream.status >= 400:
                return web.Response(status=upstream.status, body=await upstream.read(),
                                    content_type=upstream.content_type)
            resp = web.StreamResponse(headers={"Content-Type": upstream.headers.get("Content-Type", "text/plain")})
            await resp.prepare(request)
            with contextlib.suppress(aiohttp.ClientError, ConnectionResetError):
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
            with contextlib.suppress(ConnectionResetError):
                await resp.write_eof()
            return resp


async def proxy_exec(request: web.Request, get_pod: GetPod, get_node: GetNode, *, namespace: str,
                     name: str, kubelet_ssl: ssl.SSLContext | None = None) -> web.StreamResponse:
    """GET (WebSocket upgrade) /api/v1/namespaces/{namespace}/pods/{name}/exec, relayed to the kubelet."""
    base, container = await kubelet_target(get_pod, get_node, namespace, name, request.query.get("container"),
                                           secure=kubelet_ssl is not None)
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise errors.BadRequest("exec needs a WebSocket upgrade (remote-command v4/v5.channel.k8s.io); "
                                "SPDY is not supported")
    params: list[tuple[str, str]] = [("command", c) for c in request.query.getall("command", [])]
    params += [(k, request.query[k]) for k in EXEC_PARAMS if k in request.query]
    ws = web.WebSocketResponse(protocols=PROTOCOLS)
    ready = ws.can_prepare(request)
    protocol = ready.protocol or PROTOCOLS[1]
    async with aiohttp.ClientSession() as session:
        try:
            upstream = await session.ws_connect(f"{base}/exec/{namespace}/{name}/{container}", params=params,
                                                protocols=(protocol,),
                                                ssl=kubelet_ssl or True)
        except aiohttp.ClientError as e:
            raise errors.ServiceUnavailable(f"cannot reach the kubelet at {base}: {e}") from e
        await ws.prepare(request)
        async with upstream:
            await _relay(ws, upstream)
    return ws


async def _relay(client: web.WebSocketResponse, kubelet: aiohttp.ClientWebSocketResponse) -> None:
    async def down() -> None:
        async for msg in kubelet:
            if msg.type == aiohttp.WSMsgType.BINARY:
                await client.send_bytes(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                await client.send_str(msg.data)

    async def up() -> None:
        async for msg in client:
            if msg.type == aiohttp.WSMsgType.BINARY:
                await kubelet.send_bytes(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                await kubelet.send_str(msg.data)

    tasks = [asyncio.create_task(down(), name="exec-down"), asyncio.create_task(up(), name="exec-up")]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError, ConnectionResetError):
                await t
        await client.close()
        await kubelet.close()
