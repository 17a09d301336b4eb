"""HTTP handlers for the resource paths: parse the request, call the registry, render.

    /api/v1/{plural}[/{name}[/{sub}]]                         cluster-scoped, or all namespaces
    /api/v1/namespaces/{ns}/{plural}[/{name}[/{sub}]]         namespaced
    /apis/{group}/{version}/...                               the same for named groups
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import ssl
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from api import errors, jsoncodec
from api.meta import DeleteOptions, StatusCause
from api.resources import ALL, NAMESPACES, NODES, PODS, Resource
from api.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)
from apiserver import discovery, protobuf, proxy
from apiserver.registry import FieldValidation, PatchType, Registry, Result, prefix_for
from apiserver.storage import Compacted
from apiserver.tables import table, wants_table
from apiserver.watchcache import CachedObject, TooOld, with_resource_version

log = logging.getLogger(__name__)

_BY_PATH = {(r.prefix(), r.plural): r for r in ALL}

# Fields each resource can be selected by, beyond metadata.name and metadata.namespace.
FIELD_LABELS: dict[str, set[str]] = {
    "pods": {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
             "status.phase", "status.podIP", "status.nominatedNodeName"},
    "events": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
               "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
               "reason", "reportingComponent", "source", "type"},
    "nodes": {"spec.unschedulable"},
    "namespaces": {"status.phase"},
    "replicasets": {"status.replicas"},
}

_PATCH_TYPES: dict[str, PatchType] = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply",
}


@dataclass(frozen=True, slots=True)
class Target:
    resource: Resource
    namespace: str | None
    name: str | None
    sub: str | None


TARGET: web.RequestKey[Target] = web.RequestKey("target")


def resolve(prefix: str, segments: list[str]) -> Target | None:
    """Map the path after `/api/v1` or `/apis/g/v` to a resource target."""
    def find(plural: str) -> Resource | None:
        return _BY_PATH.get((prefix, plural))

    if len(segments) >= 3 and segments[0] == "namespaces":
        r = find(segments[2])
        if r is not None and r.namespaced and len(segments) <= 5:
            return Target(r, segments[1], segments[3] if len(segments) > 3 else None,
                          segments[4] if len(segments) > 4 else None)
    if 1 <= len(segments) <= 3:
        r = find(segments[0])
        if r is None:
            return None
        if r.namespaced and len(segments) > 1:
            return None
        return Target(r, None, segments[1] if len(segments) > 1 else None,
                      segments[2] if len(segments) > 2 else None)
    return None


def json_response(data: Any, *, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    body = data if isinstance(data, bytes) else jsoncodec.dumps(data)
    resp = web.Response(body=body, status=status, content_type="application/json")
    for w in warnings or []:
        resp.headers.add("Warning", f'299 - "{w}"')
    return resp


async def read_body(request: web.Request) -> Any:
    """The decoded body: JSON, or YAML; no Content-Type means JSON (the Python client)."""
    raw = await request.read()
    if not raw:
        return None
    ctype = request.content_type
    if ctype == "application/vnd.kubernetes.protobuf":
        return protobuf.decode(raw)
    try:
        if "yaml" in ctype and "apply-patch" not in ctype:
            return yaml.safe_load(raw)
        return jsoncodec.loads(raw)
    except (ValueError, yaml.YAMLError) as err:
        if "apply-patch" in ctype:
            with contextlib.suppress(yaml.YAMLError):
                return yaml.safe_load(raw)
        raise errors.BadRequest(f"the body of the request could not be decoded: {err}") from err


def _field_validation(request: web.Request) -> FieldValidation:
    value = request.query.get("fieldValidation", "Strict")
    if value not in ("Strict", "Warn", "Ignore"):
        raise errors.BadRequest(f"fieldValidation must be one of Strict, Warn or Ignore, got {value!r}")
    return value  # type: ignore[return-value]


def _dry_run(request: web.Request) -> bool:
    return "All" in request.query.getall("dryRun", [])


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


def _selectors(request: web.Request, resource: Resource) -> tuple[LabelSelector | None, FieldSelector | None]:
    labels = fields = None
    try:
        if request.query.get("labelSelector"):
            labels = parse_label_selector(request.query["labelSelector"])
        if request.query.get("fieldSelector"):
            fields = parse_field_selector(request.query["fieldSelector"])
    except SelectorError as err:
        raise errors.BadRequest(f"unable to parse requirement: {err}") from err
    if fields is not None:
        allowed = {"metadata.name", "metadata.namespace"} | FIELD_LABELS.get(resource.plural, set())
        for f in fields.fields():
            if f not in allowed:
                raise errors.BadRequest(f'field label not supported: {f}')
    return labels, fields


def _predicate(namespace: str | None, labels: LabelSelector | None,
               fields: FieldSelector | None) -> Any:
    def match(obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if namespace and meta.get("namespace") != namespace:
            return False
        if labels is not None and not labels.matches(meta.get("labels") or {}):
            return False
        return fields is None or fields.matches(obj)
    return match


def _include_object(request: web.Request) -> bool:
    return request.query.get("includeObject") == "Object"


def _encode_continue(revision: int, start: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"rv": revision, "start": start}).encode()).decode()


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError) as err:
        raise errors.BadRequest("invalid continue token") from err


class ResourceHandlers:
    def __init__(self, registry: Registry, *, bookmark_interval: float = 5.0,
                 kubelet_ssl: ssl.SSLContext | None = None) -> None:
        self.registry = registry
        self.cache = registry.cache
        self.bookmark_interval = bookmark_interval
        self.kubelet_ssl = kubelet_ssl  # https to kubelets with the API server's client cert, if secured

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        parts = path.split("/")[1:]
        if parts[0] == "api" and len(parts) >= 2:
            prefix, rest = f"/api/{parts[1]}", parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            prefix, rest = f"/apis/{parts[1]}/{parts[2]}", parts[3:]
        else:
            raise errors.NotFound(f"the server could not find the requested resource ({request.method} {path})")
        if not rest and request.method == "GET":
            listing = discovery.resource_list(prefix.split("/", 2)[-1])
            if listing is None:
                raise errors.NotFound("the server could not find the requested resource")
            return json_response(listing)
        if prefix == "/api/v1" and len(rest) >= 4 and rest[0] == "nodes" and rest[2] == "proxy":
            return await self._proxy_node(request, rest[1], "/".join(rest[3:]))
        target = resolve(prefix, rest)
        if target is None:
            raise errors.NotFound(f"the server could not find the requested resource ({request.method} {path})")
        request[TARGET] = target
        if target.sub is not None and target.sub not in target.resource.subresources:
            raise errors.NotFound(f"the server could not find the requested resource ({target.sub})")
        method = request.method
        if target.name is None:
            if method == "GET":
                if _flag(request, "watch"):
                    return await self.watch_objects(request, target)
                return await self.list_objects(request, target)
            if method == "POST":
                return await self.create(request, target)
            if method == "DELETE":
                return await self.delete_collection(request, target)
        elif target.sub in (None, "status"):
            if method == "GET":
                return await self.get(request, target)
            if method == "PUT":
                return await self.update(request, target)
            if method == "PATCH":
                return await self.patch(request, target)
            if method == "DELETE" and target.sub is None:
                return await self.delete(request, target)
        elif target.sub == "scale":
            return await self.scale(request, target)
        elif target.sub == "binding" and method == "POST":
            return await self.bind(request, target)
        elif target.sub == "finalize" and method == "PUT":
            result = await self.registry.finalize_namespace(target.name, await read_body(request))
            return self._render(request, target, result)
        elif target.sub == "eviction" and method == "POST":
            return await self.evict(request, target)
        elif target.sub in ("log", "exec") and method in ("GET", "POST"):
            return await self._proxy(request, target)
        raise errors.MethodNotAllowed(f"the server does not allow this method on the requested resource "
                                      f"({method} {path})")

    async def _proxy(self, request: web.Request, target: Target) -> web.StreamResponse:
        """pods/log and pods/exec are served by the pod's kubelet (apiserver/proxy.py)."""
        assert target.name is not None and target.namespace is not None

        async def get_pod(namespace: str, name: str) -> dict[str, Any]:
            return await self.registry.get(PODS, namespace, name)

        handler = proxy.proxy_log if target.sub == "log" else proxy.proxy_exec
        return await handler(request, get_pod, self._get_node, namespace=target.namespace, name=target.name,
                             kubelet_ssl=self.kubelet_ssl)

    async def _get_node(self, name: str) -> dict[str, Any]:
        return await self.registry.get(NODES, None, name)

    async def _proxy_node(self, request: web.Request, node: str, path: str) -> web.StreamResponse:
        """nodes/{name}/proxy/{path}: a kubelet's read-only endpoints (what `kubelite top` reads)."""
        if request.method != "GET":
            raise errors.MethodNotAllowed(f"the node proxy serves GET only, not {request.method}")
        return await proxy.proxy_node(request, self._get_node, node_name=node, path=path,
                                      kubelet_ssl=self.kubelet_ssl)

    # ------------------------------------------------------------------ rendering

    def _render(self, request: web.Request, target: Target, result: Result, *, status: int | None = None
                ) -> web.Response:
        code = status or (201 if result.created else 200)
        if wants_table(request.headers.get("Accept", "")):
            return json_response(table(target.resource.plural, [result.obj]), status=code,
                                 warnings=result.warnings)
        return json_response(result.raw or result.obj, status=code, warnings=result.warnings)

    # ------------------------------------------------------------------ verbs

    async def get(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        obj = await self.registry.get(target.resource, target.namespace, target.name)
        return self._render(request, target, Result(obj))

    async def create(self, request: web.Request, target: Target) -> web.Response:
        body = await read_body(request)
        if target.resource.namespaced and not target.namespace:
            raise errors.MethodNotAllowed("create requires a namespace in the path")
        result = await self.registry.create(target.resource, target.namespace, body,
                                            field_validation=_field_validation(request), dry_run=_dry_run(request))
        return self._render(request, target, result)

    async def update(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        result = await self.registry.update(target.resource, target.namespace, target.name,
                                            await read_body(request), subresource=target.sub,
                                            field_validation=_field_validation(request), dry_run=_dry_run(request))
        return self._render(request, target, result)

    async def patch(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        patch_type = _PATCH_TYPES.get(request.content_type)
        if patch_type is None:
            raise errors.UnsupportedMediaType(
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{', '.join(_PATCH_TYPES)}")
        result = await self.registry.patch(target.resource, target.namespace, target.name,
                                           await read_body(request), patch_type, subresource=target.sub,
                                           field_validation=_field_validation(request), dry_run=_dry_run(request))
        return self._render(request, target, result)

    async def _delete_options(self, request: web.Request) -> DeleteOptions:
        body = await read_body(request)
        try:
            options = DeleteOptions.model_validate(body or {})
        except ValueError as err:
            raise errors.BadRequest(f"invalid DeleteOptions: {err}") from err
        if "gracePeriodSeconds" in request.query:
            options.grace_period_seconds = int(request.query["gracePeriodSeconds"])
        if "propagationPolicy" in request.query:
            options.propagation_policy = request.query["propagationPolicy"]  # type: ignore[assignment]
        return options

    async def delete(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        options = await self._delete_options(request)
        result = await self.registry.delete(target.resource, target.namespace, target.name, options,
                                            dry_run=_dry_run(request))
        if result.deleted and target.resource is not PODS:
            return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                  "details": {"name": target.name, "group": target.resource.group,
                                              "kind": target.resource.plural,
                                              "uid": result.obj["metadata"].get("uid")}})
        return json_response(result.obj)

    async def delete_collection(self, request: web.Request, target: Target) -> web.Response:
        options = await self._delete_options(request)
        labels, fields = _selectors(request, target.resource)
        await self.cache.wait_fresh()
        victims = self.registry.select(target.resource, target.namespace,
                                       _predicate(target.namespace, labels, fields))
        deleted = []
        for obj in victims:
            meta = obj.obj["metadata"]
            with contextlib.suppress(errors.NotFound):
                result = await self.registry.delete(target.resource, meta.get("namespace"), meta["name"], options,
                                                    dry_run=_dry_run(request))
                deleted.append(result.obj)
        return json_response({"kind": target.resource.list_model.__name__, "apiVersion":
                              target.resource.api_version, "metadata": {}, "items": deleted})

    async def bind(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        body = await read_body(request) or {}
        node = ((body.get("target") or {}).get("name")) if isinstance(body, dict) else None
        if not node:
            raise errors.Invalid('Binding "" is invalid: target.name: Required value', kind="Binding")
        wanted_uid = ((body.get("metadata") or {}).get("uid")) if isinstance(body, dict) else None
        for _ in range(5):
            pod = await self.registry.get(PODS, target.namespace, target.name)
            if wanted_uid and wanted_uid != pod["metadata"].get("uid"):
                raise errors.conflict("pods", target.name, f"Precondition failed: UID in precondition: {wanted_uid}, "
                                      f"UID in object meta: {pod['metadata'].get('uid')}")
            if pod["spec"].get("nodeName"):
                raise errors.conflict("pods", target.name, f"pod {target.name} is already assigned to node "
                                      f'"{pod["spec"]["nodeName"]}"')
            if pod["metadata"].get("deletionTimestamp"):
                raise errors.conflict("pods", target.name, "pod is being deleted, cannot be assigned to a host")
            pod["spec"]["nodeName"] = node
            conds = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") != "PodScheduled"]
            from api.base import now

            conds.append({"type": "PodScheduled", "status": "True",
                          "lastTransitionTime": now().strftime("%Y-%m-%dT%H:%M:%SZ")})
            pod.setdefault("status", {})["conditions"] = conds
            try:
                await self.registry.write_raw(PODS, pod)
            except errors.Conflict:
                continue
            return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                  "code": 201}, status=201)
        raise errors.conflict("pods", target.name, "too many concurrent changes")

    async def evict(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        body = await read_body(request) or {}
        options = DeleteOptions.model_validate((body or {}).get("deleteOptions") or {})
        await self.registry.delete(PODS, target.namespace, target.name, options)
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "code": 201}, status=201)

    async def scale(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        r = target.resource
        if request.method == "GET":
            return json_response(self._scale_of(await self.registry.get(r, target.namespace, target.name)))
        if request.method == "PUT":
            body = await read_body(request) or {}
            replicas = (body.get("spec") or {}).get("replicas")
            rv = (body.get("metadata") or {}).get("resourceVersion")
            patch: dict[str, Any] = {"spec": {"replicas": replicas}}
            if rv:
                patch["metadata"] = {"resourceVersion": rv}
        elif request.method == "PATCH":
            patch_type = _PATCH_TYPES.get(request.content_type, "merge")
            current = self._scale_of(await self.registry.get(r, target.namespace, target.name))
            scale_patch = await read_body(request)
            new_scale = self.registry._apply_patch(r, current, scale_patch, patch_type)
            replicas = (new_scale.get("spec") or {}).get("replicas")
            patch = {"spec": {"replicas": replicas}}
        else:
            raise errors.MethodNotAllowed("scale supports GET, PUT and PATCH")
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.Invalid(f'Scale.autoscaling "{target.name}" is invalid: spec.replicas: Invalid value: '
                                 f"{replicas}: must be greater than or equal to 0", kind="Scale",
                                 name=target.name)
        result = await self.registry.patch(r, target.namespace, target.name, patch, "merge")
        return json_response(self._scale_of(result.obj))

    @staticmethod
    def _scale_of(obj: dict[str, Any]) -> dict[str, Any]:
        from api.selectors import label_selector_from_dict

        meta = obj["metadata"]
        selector = (obj.get("spec") or {}).get("selector") or {}
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion",
                                                       "creationTimestamp") if meta.get(k)},
                "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                           "selector": str(label_selector_from_dict(selector))}}

    # ------------------------------------------------------------------ list

    async def list_objects(self, request: web.Request, target: Target) -> web.Response:
        r = target.resource
        labels, fields = _selectors(request, r)
        predicate = _predicate(target.namespace, labels, fields)
        limit = int(request.query.get("limit") or 0)
        token = request.query.get("continue")
        if token:
            revision, start = _decode_continue(token)
            objects, more_start = await self._list_at(r, target.namespace, predicate, revision, start, limit)
        else:
            rv = request.query.get("resourceVersion")
            if rv in (None, ""):
                try:  # a consistent read: the cache must first reach etcd's current revision
                    await self.cache.wait_fresh()
                except TimeoutError:
                    raise errors.Timeout("the watch cache has not caught up with etcd within 3 s; try again",
                                         retry_after_seconds=1) from None
            elif rv != "0":
                await self._wait_for_revision(int(rv))
            cache = self.cache[r.plural]
            revision = self.cache.revision
            snapshot = [o for o in cache.snapshot(prefix_for(r, target.namespace)) if predicate(o.obj)]
            more_start = None
            if limit and len(snapshot) > limit:
                more_start = snapshot[limit].key
                snapshot = snapshot[:limit]
            objects = snapshot
        return self._list_response(request, r, objects, revision, more_start)

    async def _wait_for_revision(self, revision: int) -> None:
        """Wait for the cache to reach a resourceVersion the client asked for; a revision it
        does not reach in 3 s (etcd has not got there) is Kubernetes' 504 "Too large"."""
        try:
            await self.cache.wait_for(revision)
        except TimeoutError:
            raise errors.Timeout(f"Too large resource version: {revision}, current: {self.cache.revision}",
                                 causes=[StatusCause(reason="ResourceVersionTooLarge",
                                                     message="Too large resource version")],
                                 retry_after_seconds=1) from None

    def _list_response(self, request: web.Request, r: Resource, objects: list[CachedObject], revision: int,
                       more_start: str | None) -> web.Response:
        cont = _encode_continue(revision, more_start) if more_start else None
        if wants_table(request.headers.get("Accept", "")):
            return json_response(table(r.plural, [o.obj for o in objects], resource_version=str(revision),
                                       continue_=cont, include_object=_include_object(request)))
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if cont:
            meta["continue"] = cont
        head = json.dumps({"kind": r.list_model.__name__, "apiVersion": r.api_version, "metadata": meta},
                          separators=(",", ":")).encode()
        body = head[:-1] + b',"items":[' + b",".join(o.raw for o in objects) + b"]}"
        return json_response(body)

    async def _list_at(self, r: Resource, namespace: str | None, predicate: Any, revision: int, start: str,
                       limit: int) -> tuple[list[CachedObject], str | None]:
        """A continued list: read etcd at the first page's revision, so pages are one snapshot."""
        if self.cache.revision == revision:
            objs = [o for o in self.cache[r.plural].snapshot(prefix_for(r, namespace))
                    if o.key >= start and predicate(o.obj)]
            next_key = objs[limit].key if limit and len(objs) > limit else None
            return (objs[:limit] if limit else objs), next_key
        out: list[CachedObject] = []
        cursor = start
        while True:
            try:
                kvs, _, more = await self.registry.storage.list(prefix_for(r, namespace), start=cursor,
                                                                limit=max(limit, 500) + 1, revision=revision)
            except Compacted as err:
                raise errors.Gone("The provided continue parameter is too old to display a consistent list "
                                  "result. You can start a new list without the continue parameter.") from err
            for kv in kvs:
                if kv.key < cursor:
                    continue
                obj = CachedObject(kv.key, with_resource_version(kv.value, kv.mod_revision), kv.mod_revision)
                if predicate(obj.obj):
                    if limit and len(out) == limit:
                        return out, kv.key
                    out.append(obj)
            if not more or not kvs:
                return out, None
            cursor = kvs[-1].key + "\0"

    # ------------------------------------------------------------------ watch

    async def watch_objects(self, request: web.Request, target: Target) -> web.StreamResponse:
        r = target.resource
        labels, fields = _selectors(request, r)
        predicate = _predicate(target.namespace, labels, fields)
        rv = request.query.get("resourceVersion") or None
        initial = _flag(request, "sendInitialEvents")
        bookmarks = _flag(request, "allowWatchBookmarks")
        as_table = wants_table(request.headers.get("Accept", ""))
        timeout = float(request.query.get("timeoutSeconds") or 0) or None
        if initial and request.query.get("resourceVersionMatch") != "NotOlderThan":
            raise errors.Invalid("sendInitialEvents is supported only with resourceVersionMatch=NotOlderThan",
                                 kind="ListOptions")
        cache = self.cache[r.plural]
        since: int | None
        if rv is None or rv == "0":
            since = None
            initial = True
        else:
            since = int(rv)
            await self._wait_for_revision(since)
        resp = web.StreamResponse(headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        try:
            watcher = cache.watch(predicate, since=None if initial else since, initial=initial)
        except TooOld:
            return await self._watch_from_etcd(request, target, predicate, int(rv or 0), resp)
        await resp.prepare(request)

        def frame(kind: str, obj: CachedObject | dict[str, Any]) -> bytes:
            if as_table and kind != "BOOKMARK":
                data = obj.obj if isinstance(obj, CachedObject) else obj
                payload = json.dumps(table(r.plural, [data], include_object=_include_object(request)),
                                     separators=(",", ":")).encode()
            else:
                payload = obj.raw if isinstance(obj, CachedObject) else json.dumps(obj).encode()
            return b'{"type":"' + kind.encode() + b'","object":' + payload + b"}\n"

        def bookmark(annotations: dict[str, str] | None = None) -> bytes:
            meta: dict[str, Any] = {"resourceVersion": str(self.cache.revision)}
            if annotations:
                meta["annotations"] = annotations
            return frame("BOOKMARK", {"kind": r.kind, "apiVersion": r.api_version, "metadata": meta})

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        try:
            if initial:
                # Initial ADDED events were queued at registration; drain them, then mark the end.
                while not watcher.queue.empty():
                    item = watcher.queue.get_nowait()
                    if item is None:
                        return resp
                    await resp.write(frame(*item))
                if _flag(request, "sendInitialEvents"):
                    await resp.write(bookmark({"k8s.io/initial-events-end": "true"}))
            while True:
                wait = self.bookmark_interval
                if deadline is not None:
                    wait = min(wait, deadline - loop.time())
                    if wait <= 0:
                        break
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), wait)
                except TimeoutError:
                    if bookmarks and (deadline is None or loop.time() < deadline):
                        await resp.write(bookmark())
                    continue
                if item is None:
                    break
                await resp.write(frame(*item))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            cache.unwatch(watcher)
        return resp

    async def _watch_from_etcd(self, request: web.Request, target: Target, predicate: Any, since: int,
                               resp: web.StreamResponse) -> web.StreamResponse:
        """A watch from before the cache's window: stream etcd's own history for it (410 once compacted)."""
        as_table = wants_table(request.headers.get("Accept", ""))
        await resp.prepare(request)
        prefix = prefix_for(target.resource, target.namespace)
        try:
            async for ev in self.registry.storage.watch(prefix, start_revision=since + 1):
                if ev.deleted:
                    if not ev.prev_value:
                        continue
                    obj = with_resource_version(ev.prev_value, ev.revision)
                    kind = "DELETED"
                else:
                    obj = with_resource_version(ev.value, ev.revision)
                    kind = "ADDED" if ev.created else "MODIFIED"
                if predicate(obj):
                    shown = table(target.resource.plural, [obj], include_object=_include_object(request)) \
                        if as_table else obj
                    await resp.write(json.dumps({"type": kind, "object": shown}, separators=(",", ":")).encode()
                                     + b"\n")
        except Compacted:
            status = errors.Gone(f"too old resource version: {since}").to_status().to_dict()
            await resp.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp


__all__ = ["NAMESPACES", "ResourceHandlers", "json_response", "resolve"]
