"""The API server application: routes, middlewares and the long-lived tasks it owns.

    request -> metrics -> errors-as-Status -> discovery | health | ResourceHandlers
                                                                   |
                                               Registry (semantics) -> Storage (etcd)
                                                                   \\-> WatchCache <- one etcd watch

Background tasks (the watch cache feed and the compactor) live in a cleanup context:
if one of them dies, the server stops with that error rather than limping on.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from api import errors
from api.resources import ALL, NAMESPACES
from apiserver import discovery, kubernetes_service
from apiserver.allocator import DEFAULT_CLUSTER_IP_RANGE, DEFAULT_NODE_PORT_RANGE, ServiceAllocator
from apiserver.auth import reviews
from apiserver.auth.config import AuthConfig
from apiserver.auth.config import install as install_auth
from apiserver.handlers import ResourceHandlers, json_response
from apiserver.metrics import Metrics, middleware
from apiserver.registry import Registry
from apiserver.storage import Storage, Unavailable
from apiserver.watchcache import WatchCache

log = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024  # Kubernetes' limit on a request body

CONFIG: web.AppKey[ServerConfig] = web.AppKey("config")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
STORAGE: web.AppKey[Storage] = web.AppKey("storage")
CACHE: web.AppKey[WatchCache] = web.AppKey("cache")
REGISTRY: web.AppKey[Registry] = web.AppKey("registry")
HANDLERS: web.AppKey[ResourceHandlers] = web.AppKey("handlers")


@dataclass
class ServerConfig:
    etcd_servers: str
    compaction_interval: float = 300.0
    # Revisions kept behind the current one at each compaction, so that watchers that
    # reconnect within a few minutes can resume without a relist.
    compaction_retain: int = 10000
    bookmark_interval: float = 5.0
    watch_window: int = 10000
    # TLS, authentication and authorization; None serves plain HTTP to anyone (loopback only).
    auth: AuthConfig | None = None
    service_cluster_ip_range: str = DEFAULT_CLUSTER_IP_RANGE
    service_node_port_range: tuple[int, int] = DEFAULT_NODE_PORT_RANGE
    # Where clients reach this server: the endpoints of the `kubernetes` Service (None: not kept).
    advertise_address: str | None = None
    advertise_port: int = 6443


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as a Kubernetes `Status` object."""
    try:
        return await handler(request)
    except errors.ApiError as err:
        return _status(err)
    except web.HTTPRequestEntityTooLarge as err:
        return _status(errors.RequestEntityTooLarge(f"the request body is too large: {err.text}; the limit is 3 MiB"))
    except web.HTTPException:
        raise
    except Unavailable as err:
        return _status(errors.ServiceUnavailable(str(err)))
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as err:
        log.exception("internal error serving %s %s", request.method, request.path)
        return _status(errors.InternalError(f"an internal error occurred: {err!r}"))


def _status(err: errors.ApiError) -> web.Response:
    return json_response(err.to_status().to_dict(), status=err.code)


async def _compactor(storage: Storage, config: ServerConfig) -> None:
    """Compact etcd history periodically, keeping the most recent revisions."""
    while True:
        await asyncio.sleep(config.compaction_interval)
        try:
            revision = await storage.current_revision()
            target = revision - config.compaction_retain
            if target > 0:
                await storage.compact(target)
                log.info("compacted etcd history up to revision %d", target)
        except Exception as err:  # a failed compaction is retried next round
            if "compacted" not in str(err):
                log.warning("etcd compaction failed: %s", err)


def tune_gc() -> None:
    """Keep Python's cyclic garbage collector out of the request path. For the server's
    process (`kubelite apiserver`, `kubelite server`), once it serves: it is process-wide.

    Serving a create allocates a few hundred containers (the decoded body, the pydantic
    model, the response), and 32 requests in flight hold thousands of them at once. With
    the default threshold (a young collection every 700 net allocations) collections fire
    every few requests, promote objects that die a moment later, and trigger full
    collections that walk every loaded module, pydantic schema and cached object while
    finding almost nothing to free. At 32 clients creating pods, collections took ~7% of
    the server's CPU (py-spy) and the full ones set the p99 latency: freezing alone took
    p99 from 65-87 ms to 35-46 ms in the same runs, the threshold a further ~8% of the
    server's CPU per create (docs/benchmarks.md).

    So: freeze what is alive once the server has started (modules, schemas, the cache's
    initial contents) into the permanent generation that collections skip (reference
    counting still frees those objects), and collect the young generation after 20,000
    net allocations instead of 700. The server's objects are freed by reference counting;
    the collector is only for cycles, which are rare in the request path.
    """
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def _bootstrap(registry: Registry) -> None:
    """Create the namespaces every Kubernetes cluster has (idempotent)."""
    for name in SYSTEM_NAMESPACES:
        with contextlib.suppress(errors.AlreadyExists):
            await registry.create(NAMESPACES, None, {"metadata": {"name": name}})


def create_app(config: ServerConfig) -> web.Application:
    metrics = Metrics()
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[middleware(metrics), status_errors],  # type: ignore[list-item]
    )
    app[CONFIG] = config
    app[METRICS] = metrics

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        storage = Storage(config.etcd_servers)
        await storage.connect()
        cache = WatchCache(storage, [r.plural for r in ALL], window=config.watch_window)
        registry = Registry(storage, cache, services=ServiceAllocator(
            storage, cluster_ip_range=config.service_cluster_ip_range, node_port_range=config.service_node_port_range))
        app[STORAGE], app[CACHE], app[REGISTRY] = storage, cache, registry
        kubelet_ssl = config.auth.kubelet_client_ssl() if config.auth is not None else None
        app[HANDLERS] = ResourceHandlers(registry, bookmark_interval=config.bookmark_interval,
                                         kubelet_ssl=kubelet_ssl)
        tasks = [asyncio.create_task(cache.run(), name="watch-cache"),
                 asyncio.create_task(_compactor(storage, config), name="compactor")]
        for task in tasks:
            task.add_done_callback(_die_with)
        await asyncio.wait_for(cache.ready.wait(), 30)
        await _bootstrap(registry)
        if config.advertise_address is not None:
            try:  # before serving, so that clients find it at once; then kept by the loop
                await kubernetes_service.reconcile(registry, address=config.advertise_address,
                                                   port=config.advertise_port)
            except errors.ApiError as err:
                log.warning("could not create the kubernetes Service: %s", err)
            keeper = asyncio.create_task(kubernetes_service.keep(registry, address=config.advertise_address,
                                                                 port=config.advertise_port), name="kubernetes-service")
            keeper.add_done_callback(_die_with)
            tasks.append(keeper)
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await storage.close()

    app.cleanup_ctx.append(lifecycle)

    async def resources(request: web.Request) -> web.StreamResponse:
        handlers: ResourceHandlers = request.app[HANDLERS]
        return await handlers.dispatch(request)

    async def version(request: web.Request) -> web.Response:
        return json_response(discovery.VERSION)

    async def api(request: web.Request) -> web.Response:
        return json_response(discovery.core_versions(f"{request.host}"))

    async def apis(request: web.Request) -> web.Response:
        return json_response(discovery.api_groups())

    async def openapi_root(request: web.Request) -> web.Response:
        return json_response(discovery.openapi_root())

    async def openapi_doc(request: web.Request) -> web.Response:
        doc = discovery.openapi_document(request.match_info["path"])
        if doc is None:
            raise errors.NotFound("no OpenAPI document for that group version")
        return json_response(doc)

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(request: web.Request) -> web.Response:
        cache: WatchCache = request.app[CACHE]
        storage: Storage = request.app[STORAGE]
        try:
            await asyncio.wait_for(storage.current_revision(), 2)
        except Exception as err:
            return web.Response(status=503, text=f"[-]etcd failed: {err}\nreadyz check failed\n")
        if not cache.ready.is_set():
            return web.Response(status=503, text="[-]watch-cache not ready\nreadyz check failed\n")
        return web.Response(text="ok")

    async def metrics_handler(request: web.Request) -> web.Response:
        return web.Response(text=request.app[METRICS].render(), content_type="text/plain")

    app.router.add_get("/version", version)
    app.router.add_get("/api", api)
    app.router.add_get("/apis", apis)
    app.router.add_get("/openapi/v3", openapi_root)
    app.router.add_get("/openapi/v3/{path:.+}", openapi_doc)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    reviews.add_routes(app)
    app.router.add_route("*", "/api/{tail:.*}", resources)
    app.router.add_route("*", "/apis/{tail:.*}", resources)
    if config.auth is not None:
        install_auth(app, config.auth, registry_key=REGISTRY)
    return app


def _die_with(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.critical("background task %s died: %r; stopping the server", task.get_name(), exc)
        raise SystemExit(f"kubelite apiserver: {task.get_name()} failed: {exc}")
