"""The async HTTP client of the kubelite API: typed verbs over the Kubernetes REST conventions.

    client = Client("http://127.0.0.1:6443")
    async with client:
        pod = await client.get(Pod, "web-0", namespace="default")
        async for event in client.watch(Pod, namespace="default"):
            ...

Contract:

* Every verb takes and returns the pydantic models of `api/`; paths come from the
  `api.resources` table, so the client knows no URL by heart. Namespaced kinds default to
  the object's namespace, else `"default"`; a `list`/`watch` without a namespace covers all
  namespaces.
* Optimistic concurrency is the caller's: `update` sends the object's
  `metadata.resourceVersion`, and the server answers a stale one with 409 `Conflict`.
  Re-read and retry; never strip the resourceVersion to force a write.
* Non-2xx replies raise the typed `ApiError` from `api.errors` (`NotFound`, `Conflict`,
  `AlreadyExists`, `Invalid`, ...), built from the server's `Status` and chained to the
  `aiohttp.ClientResponseError` that carried it. A server that cannot be reached raises
  `ApiConnectionError` (a `ConnectionError`) naming the server; a request that outlives
  `timeout` raises `ApiTimeout` (a `TimeoutError`). Nothing is retried here except watches
  (see `api.watch`), because only the caller knows whether a write may be repeated.
* The aiohttp session is created on first use inside the running loop and closed by
  `close()` / `async with`; one `Client` belongs to one event loop.
"""

from __future__ import annotations

import json as jsonlib
import logging
import ssl as sslmod
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar

import aiohttp

from api import jsoncodec, resources
from api.apps import Scale, ScaleSpec
from api.base import KubeModel
from api.core import Binding, ObjectReference, Pod
from api.errors import ApiError
from api.meta import DeleteOptions, ObjectMeta, Preconditions
from api.watch import Watch

__all__ = [
    "ApiConnectionError", "ApiTimeout", "Client", "JsonPatch", "ListResult", "PatchType", "object_meta",
]

log = logging.getLogger(__name__)

T = TypeVar("T", bound=KubeModel)

PatchType = Literal["merge", "strategic", "json", "apply"]
# A merge/strategic/apply patch is an object; a JSON patch is a list of operations.
JsonPatch = dict[str, Any] | list[Any]
_PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    # Server-side apply: YAML is a superset of JSON, so a JSON body is a valid apply patch.
    "apply": "application/apply-patch+yaml",
}

# Query values must be strings for aiohttp; Kubernetes spells booleans in lower case.
Params = Mapping[str, str | int | bool | None]


class ApiConnectionError(ConnectionError):
    """The API server could not be reached, or the connection broke mid-request."""

    def __init__(self, server: str, detail: str) -> None:
        super().__init__(f"cannot reach the API server at {server}: {detail}")
        self.server = server


class ApiTimeout(TimeoutError):
    """A request got no complete answer within the client's timeout."""


@dataclass(slots=True)
class ListResult(Generic[T]):
    items: list[T]
    resource_version: str
    continue_: str | None = None
    remaining_item_count: int | None = field(default=None, repr=False)


def object_meta(obj: KubeModel) -> ObjectMeta:
    """`obj.metadata` of any top-level API object (KubeModel itself declares no metadata)."""
    meta = getattr(obj, "metadata", None)
    if not isinstance(meta, ObjectMeta):
        raise TypeError(f"{type(obj).__name__} has no ObjectMeta")
    return meta


class Client:
    def __init__(
        self,
        server: str,
        *,
        token: str | None = None,
        ssl: sslmod.SSLContext | None = None,
        timeout: float = 30,
        user_agent: str = "kubelite",
    ) -> None:
        # `unix:///run/kubelite/apiserver.sock` reaches a server on a unix socket: simulated
        # nodes in their own network namespaces share the filesystem, not the loopback.
        self._unix_socket: str | None = None
        if server.startswith("unix://"):
            self._unix_socket = server[len("unix://"):]
            server = "http://localhost"
        self.server = server.rstrip("/")
        self.timeout = timeout
        self.user_agent = user_agent
        self._ssl = ssl
        self._headers = {"Accept": "application/json", "User-Agent": user_agent}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        # Responses being streamed (watches): close() must wake their readers itself, since
        # closing the session leaves a reader blocked on a quiet stream waiting forever.
        self._streams: set[aiohttp.ClientResponse] = set()

    # --------------------------------------------------------------- lifetime

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool; open watches end with `ApiConnectionError`."""
        self._closed = True
        for resp in list(self._streams):
            resp.content.set_exception(ApiConnectionError(self.server, "the client is closed"))
            resp.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def closed(self) -> bool:
        return self._closed

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ApiConnectionError(self.server, "the client is closed")
        if self._session is None:
            # limit: every informer holds one connection for its watch; leave room for requests.
            connector: aiohttp.BaseConnector
            if self._unix_socket is not None:
                connector = aiohttp.UnixConnector(path=self._unix_socket, limit=256)
            else:
                connector = aiohttp.TCPConnector(limit=256, ssl=self._ssl if self._ssl is not None else True)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers,
                                                  raise_for_status=False)
        return self._session

    # ------------------------------------------------------------- transport

    @asynccontextmanager
    async def stream(self, method: str, path: str, *, params: Params | None = None,
                     read_timeout: float | None = None) -> AsyncIterator[aiohttp.ClientResponse]:
        """A response whose body the caller reads as it arrives (watch, logs); 2xx only.

        Connecting is bounded by the client timeout; reading by `read_timeout` per read (or not at all).
        """
        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeout, sock_read=read_timeout)
        try:
            async with self._get_session().request(method, self.server + path, params=_query(params),
                                                   timeout=timeout) as resp:
                if resp.status >= 400:
                    await self._raise_for_status(resp)
                self._streams.add(resp)
                try:
                    yield resp
                finally:
                    self._streams.discard(resp)
        except aiohttp.ClientConnectionError as e:
            raise ApiConnectionError(self.server, str(e) or type(e).__name__) from e

    async def request(self, method: str, path: str, *, params: Params | None = None, json: Any = None,
                      content_type: str | None = None) -> Any:
        """One request; returns the decoded JSON reply (text if not JSON, None if empty).

        Raises the typed `ApiError` for a non-2xx reply, `ApiConnectionError`, `ApiTimeout`.
        """
        headers: dict[str, str] = {}
        data: bytes | None = None
        if json is not None:
            data = jsoncodec.dumps(json)
            headers["Content-Type"] = content_type or "application/json"
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with self._get_session().request(method, self.server + path, params=_query(params),
                                                   data=data, headers=headers, timeout=timeout) as resp:
                if resp.status >= 400:
                    await self._raise_for_status(resp)
                for warning in resp.headers.getall("Warning", []):
                    log.warning("%s %s: server warning: %s", method, path, warning)
                body = await resp.read()
        except aiohttp.ClientConnectionError as e:
            raise ApiConnectionError(self.server, str(e) or type(e).__name__) from e
        except TimeoutError as e:
            raise ApiTimeout(f"{method} {self.server}{path} timed out after {self.timeout:g}s") from e
        if not body:
            return None
        try:
            return jsoncodec.loads(body)
        except ValueError:
            return body.decode(errors="replace")

    async def _raise_for_status(self, resp: aiohttp.ClientResponse) -> None:
        body = await resp.read()
        try:
            data = jsonlib.loads(body)
        except ValueError:
            data = None
        if not (isinstance(data, dict) and data.get("kind") == "Status"):
            text = body.decode(errors="replace").strip()
            data = {"message": f"{resp.method} {resp.url.path}: HTTP {resp.status} {text or resp.reason}"}
        cause = aiohttp.ClientResponseError(resp.request_info, resp.history, status=resp.status,
                                            message=str(data.get("message") or resp.reason),
                                            headers=resp.headers)
        raise ApiError.from_status(data, resp.status) from cause

    # ----------------------------------------------------------------- verbs

    async def get(self, model: type[T], name: str, *, namespace: str | None = None) -> T:
        res = resources.for_model(model)
        return model.from_dict(await self.request("GET", res.path(_ns(res, namespace), name)))

    async def list(
        self,
        model: type[T],
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
    ) -> ListResult[T]:
        """One page of a list; `namespace=None` lists every namespace."""
        res = resources.for_model(model)
        params = {"labelSelector": label_selector, "fieldSelector": field_selector, "limit": limit,
                  "continue": continue_, "resourceVersion": resource_version}
        data = await self.request("GET", res.path(namespace if res.namespaced else None), params=params)
        meta = data.get("metadata") or {}
        return ListResult(
            items=[model.from_dict(item) for item in data.get("items") or []],
            resource_version=str(meta.get("resourceVersion") or ""),
            continue_=meta.get("continue") or None,
            remaining_item_count=meta.get("remainingItemCount"),
        )

    async def list_all(
        self,
        model: type[T],
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = 500,
        resource_version: str | None = None,
    ) -> ListResult[T]:
        """Every page of a list, following `continue` tokens. The pages form one consistent
        snapshot (the server pins them to the first page's revision); a token that expired
        meanwhile raises `Gone`: list again."""
        items: list[T] = []
        token: str | None = None
        while True:
            page = await self.list(model, namespace=namespace, label_selector=label_selector,
                                   field_selector=field_selector, limit=limit, continue_=token,
                                   resource_version=resource_version if token is None else None)
            items.extend(page.items)
            token = page.continue_
            if not token:
                return ListResult(items=items, resource_version=page.resource_version)

    async def create(self, obj: T, *, namespace: str | None = None) -> T:
        res = resources.for_model(type(obj))
        ns = _ns(res, namespace or object_meta(obj).namespace)
        return type(obj).from_dict(await self.request("POST", res.path(ns), json=obj.to_dict()))

    async def update(self, obj: T) -> T:
        """PUT the whole object; its `metadata.resourceVersion` is the precondition (409 if stale)."""
        return await self._put(obj, None)

    async def update_status(self, obj: T) -> T:
        """PUT the object's status (`/status`): the server keeps spec and metadata as stored."""
        return await self._put(obj, "status")

    async def _put(self, obj: T, sub: str | None) -> T:
        res = resources.for_model(type(obj))
        meta = object_meta(obj)
        if not meta.name:
            raise ValueError(f"cannot update a {res.kind} without metadata.name")
        path = res.path(_ns(res, meta.namespace), meta.name, sub)
        return type(obj).from_dict(await self.request("PUT", path, json=obj.to_dict()))

    async def patch(
        self,
        model: type[T],
        name: str,
        patch: JsonPatch,
        *,
        namespace: str | None = None,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool | None = None,
    ) -> T:
        """PATCH with one of the four Kubernetes patch types. `apply` is server-side apply:
        it needs a field manager (defaults to the user agent) and creates a missing object."""
        res = resources.for_model(model)
        if patch_type == "apply" and field_manager is None:
            field_manager = self.user_agent
        params = {"fieldManager": field_manager, "force": force}
        data = await self.request("PATCH", res.path(_ns(res, namespace), name, subresource), params=params,
                                  json=patch, content_type=_PATCH_CONTENT_TYPES[patch_type])
        return model.from_dict(data)

    async def delete(
        self,
        model: type[KubeModel],
        name: str,
        *,
        namespace: str | None = None,
        grace_period_seconds: int | None = None,
        propagation_policy: Literal["Orphan", "Background", "Foreground"] | None = None,
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """DELETE; returns the server's reply: the object (still terminating, or as deleted) or a Status.

        `uid` / `resource_version` are preconditions: 409 Conflict if the stored object differs."""
        res = resources.for_model(model)
        preconditions = None
        if uid is not None or resource_version is not None:
            preconditions = Preconditions(uid=uid, resource_version=resource_version)
        options = DeleteOptions(api_version="v1", kind="DeleteOptions",
                                grace_period_seconds=grace_period_seconds,
                                propagation_policy=propagation_policy, preconditions=preconditions)
        data = await self.request("DELETE", res.path(_ns(res, namespace), name), json=options.to_dict())
        return data if isinstance(data, dict) else {}

    async def bind(self, pod: Pod, node_name: str) -> None:
        """Assign `pod` to `node_name` (POST pods/{name}/binding). The pod's uid is a
        precondition, so a pod deleted and re-created under the same name is not bound."""
        meta = pod.metadata
        if not meta.name:
            raise ValueError("cannot bind a pod without metadata.name")
        ns = meta.namespace or "default"
        binding = Binding(metadata=ObjectMeta(name=meta.name, namespace=ns, uid=meta.uid),
                          target=ObjectReference(api_version="v1", kind="Node", name=node_name))
        await self.request("POST", resources.PODS.path(ns, meta.name, "binding"), json=binding.to_dict())

    async def get_scale(self, model: type[KubeModel], name: str, *, namespace: str | None = None) -> Scale:
        res = resources.for_model(model)
        return Scale.from_dict(await self.request("GET", res.path(_ns(res, namespace), name, "scale")))

    async def update_scale(self, model: type[KubeModel], name: str, replicas: int, *,
                           namespace: str | None = None) -> Scale:
        """Set the replicas of a Deployment or ReplicaSet through `/scale` (unconditional)."""
        res = resources.for_model(model)
        ns = _ns(res, namespace)
        scale = Scale(metadata=ObjectMeta(name=name, namespace=ns), spec=ScaleSpec(replicas=replicas))
        return Scale.from_dict(await self.request("PUT", res.path(ns, name, "scale"), json=scale.to_dict()))

    def watch(
        self,
        model: type[T],
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
    ) -> Watch[T]:
        """A resuming watch stream: see `api.watch.Watch`. Use `async with` to close it promptly."""
        res = resources.for_model(model)
        return Watch(self, model, path=res.path(namespace if res.namespaced else None),
                     label_selector=label_selector, field_selector=field_selector,
                     resource_version=resource_version, timeout_seconds=timeout_seconds)


def _ns(res: resources.Resource, namespace: str | None) -> str | None:
    if not res.namespaced:
        return None
    return namespace or "default"


def _query(params: Params | None) -> dict[str, str] | None:
    if not params:
        return None
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out
