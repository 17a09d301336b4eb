"""Authentication and the middleware that enforces authentication and authorization.

    request -> who is it?   verified TLS client certificate (CN=user, O=groups)
                            else `Authorization: Bearer <token>` (hashed lookup)
                            else a unix-socket identity, if configured
                            else anonymous
            -> may they?    authz.authorize / authz.authorize_path
            -> handler      with request[USER] set

Invariants:

* A client certificate is only ever read from the TLS session (`ssl_object.getpeercert`),
  never from a header, and the server's SSL context has already verified it against the
  cluster CA and its `clientAuth` purpose during the handshake (`pki.server_ssl_context`).
* Credentials that are presented but wrong (an unknown token, a malformed Authorization
  header) get 401 on every path, including health, as in Kubernetes: only a request with
  no credentials at all is anonymous.
* Anonymous requests reach only `PUBLIC_PATHS` (health, version) and `BOOTSTRAP_PATHS` (the
  join endpoints, which authenticate the join token themselves); anything else is 401.
* Every authenticated user carries the group `system:authenticated`.
* Authorization runs before the handler, so a refused request never reaches the registry,
  and an unknown resource is 403 rather than 404 for those who may not see it. For writes
  by a node to a pod, the stored pod's `spec.nodeName` comes from `pod_lookup` (a read of
  etcd through the registry), never from the request; a node writing to a pod that does not
  exist gets 404 (it may read every pod anyway), as a kubelet finishing a pod expects.
* A node reads a ConfigMap or Secret only if a pod bound to it names the object
  (`uses_lookup`, over the stored pods); a list or watch must name it with
  `fieldSelector=metadata.name=X`, as Kubernetes' Node authorizer requires.

Known limit: between the node-ownership check and the write there is a window in which the
pod could be deleted and re-created under the same name on another node; nodeName is
immutable once bound, so only that re-creation race remains (Kubernetes closes it with a
uid precondition in admission).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from cryptography import x509

from api import errors
from apiserver.auth import authz
from apiserver.auth.pki import Identity, PKIError, identity_of
from apiserver.auth.requestinfo import RequestInfo, request_info
from apiserver.auth.tokens import UserTokenStore
from apiserver.handlers import json_response, read_body
from apiserver.registry import Registry

log = logging.getLogger(__name__)

AUTHENTICATED_GROUP = "system:authenticated"
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")
BOOTSTRAP_PATHS = ("/kubelite/v1/cluster-info", "/kubelite/v1/join")

# Creates whose rules depend on the new object's name (own Node, own Lease, kube-system).
_NAMED_CREATES = frozenset({"nodes", "leases", "namespaces", "services", "endpoints", "endpointslices"})

USER: web.RequestKey[Identity] = web.RequestKey("kubelite-user")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
# (request, namespace, name) -> the stored pod, or None if there is none.
PodLookup = Callable[[web.Request, str, str], Awaitable[dict[str, Any] | None]]
# (request, node, "configmaps" | "secrets", namespace, name) -> a pod bound to the node names it.
UsesLookup = Callable[[web.Request, str, str, str, str], Awaitable[bool]]


class BadCredentials(Exception):
    """Credentials were presented and are not valid."""


@dataclass
class Authenticator:
    """Identifies the caller of a request; see the module invariants."""

    user_tokens: UserTokenStore | None = None
    # Who a request arriving on the server's unix socket is, when it brings no credentials.
    # The socket's file mode (0600, root) is then the credential; None treats it like TCP.
    unix_socket_identity: Identity | None = None

    def authenticate(self, request: web.Request) -> Identity | None:
        """The caller, or None for an anonymous request; BadCredentials for wrong credentials."""
        identity = self._from_certificate(request)
        if identity is None:
            identity = self._from_token(request)
        if identity is None and self.unix_socket_identity is not None and _on_unix_socket(request):
            identity = self.unix_socket_identity
        if identity is None:
            return None
        groups = identity.groups if AUTHENTICATED_GROUP in identity.groups else (*identity.groups,
                                                                                   AUTHENTICATED_GROUP)
        return Identity(identity.user, groups)

    @staticmethod
    def _from_certificate(request: web.Request) -> Identity | None:
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is None:
            return None
        der = ssl_object.getpeercert(binary_form=True)
        if not der:
            return None
        try:
            return identity_of(x509.load_der_x509_certificate(der))
        except (PKIError, ValueError) as err:
            raise BadCredentials(f"client certificate: {err}") from err

    def _from_token(self, request: web.Request) -> Identity | None:
        header = request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise BadCredentials("only bearer tokens are accepted in the Authorization header")
        identity = self.user_tokens.authenticate(token) if self.user_tokens is not None else None
        if identity is None:
            raise BadCredentials("invalid bearer token")
        return identity


def _on_unix_socket(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and isinstance(transport.get_extra_info("sockname"), str)


def _public(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS)


def status_response(err: errors.ApiError) -> web.Response:
    return json_response(err.to_status().to_dict(), status=err.code)


def unauthorized() -> web.Response:
    return status_response(errors.Unauthorized("Unauthorized"))


def registry_pod_lookup(key: web.AppKey[Registry]) -> PodLookup:
    """A PodLookup that reads the pod from the app's registry (etcd, not a cache)."""
    from api.resources import PODS

    async def lookup(request: web.Request, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await request.app[key].get(PODS, namespace, name)
        except errors.NotFound:
            return None

    return lookup


def registry_uses_lookup(key: web.AppKey[Registry]) -> UsesLookup:
    """A UsesLookup over the registry's cache of pods (the watch cache, which every kubelet's
    pod watch is served from, so a node never learns of a pod before this does)."""
    from api.config import spec_config_refs
    from api.resources import PODS

    async def uses(request: web.Request, node: str, resource: str, namespace: str, name: str) -> bool:
        wanted = ("configmap" if resource == "configmaps" else "secret", name)
        bound = request.app[key].select(PODS, namespace, lambda p: (p.get("spec") or {}).get("nodeName") == node)
        return any(wanted in spec_config_refs(o.obj.get("spec") or {}) for o in bound)

    return uses


def _selected_name(query: Any) -> str | None:
    """X of a list/watch's `fieldSelector=metadata.name=X` (the only selector that names one object)."""
    selector = str(query.get("fieldSelector") or "")
    for op in ("==", "="):
        field, sep, value = selector.partition(op)
        if sep and field.strip() == "metadata.name" and value and "," not in value and "=" not in value:
            return value.strip()
    return None


async def _created_name(request: web.Request) -> str | None:
    """The name a create asks for, decoded exactly as the handler will decode the body."""
    try:
        body = await read_body(request)
    except errors.ApiError:
        return None
    meta = body.get("metadata") if isinstance(body, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) and name else None


def auth_middleware(authenticator: Authenticator, *, pod_lookup: PodLookup,
                    uses_lookup: UsesLookup | None = None) -> Middleware:
    """The aiohttp middleware: 401 for anonymous or bad credentials, 403 for refused requests."""

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path in BOOTSTRAP_PATHS:
            return await handler(request)
        try:
            user = authenticator.authenticate(request)
        except BadCredentials as err:
            log.info("refused %s %s from %s: %s", request.method, path, request.remote, err)
            return unauthorized()
        if user is None:
            if _public(path):
                return await handler(request)
            return unauthorized()
        request[USER] = user
        info = request_info(request.method, path, request.query)
        try:
            denied = await _authorize(request, user, info, pod_lookup, uses_lookup)
        except errors.NotFound as err:
            return status_response(err)
        if denied is not None:
            log.info("forbidden: %s", denied.message)
            return status_response(denied)
        return await handler(request)

    return auth


async def _authorize(request: web.Request, user: Identity, info: RequestInfo,
                     pod_lookup: PodLookup, uses_lookup: UsesLookup | None = None) -> errors.Forbidden | None:
    if info.resource is None:
        allowed, _ = authz.authorize_path(user, info.verb, info.path)
        if allowed:
            return None
        return errors.Forbidden(authz.forbidden_path_message(user, info.verb, info.path))
    name = info.name
    obj_node_name = None
    node_uses = False
    if authz.MASTERS_GROUP not in user.groups:
        if info.verb == "create" and name is None and info.resource in _NAMED_CREATES:
            name = await _created_name(request)
        if (info.resource == "pods" and info.namespace and info.name and info.subresource in (None, "status")
                and info.verb in {"update", "patch", "delete"} and authz.node_name_of(user) is not None):
            pod = await pod_lookup(request, info.namespace, info.name)
            if pod is None:
                # A node may read every pod, so "not found" tells it nothing new, and kubelets
                # rely on 404 to learn that a pod they are finishing is already gone.
                raise errors.not_found("pods", info.name, kind="pods")
            obj_node_name = (pod.get("spec") or {}).get("nodeName")
        node = authz.node_name_of(user)
        if (node is not None and info.resource in authz.NODE_REFERENCED and info.subresource is None
                and info.verb in authz.READ and info.namespace and uses_lookup is not None):
            name = name or (_selected_name(request.query) if info.verb != "get" else None)
            if name:
                node_uses = await uses_lookup(request, node, info.resource, info.namespace, name)
    allowed, reason = authz.authorize(user, info.verb, info.resource, info.namespace, name, info.subresource,
                                      obj_node_name, node_uses=node_uses)
    if allowed:
        return None
    message = authz.forbidden_message(user, info.verb, info.resource, info.group, info.namespace, info.name,
                                      info.subresource, reason)
    return errors.Forbidden(message, name=info.name, group=info.group, kind=info.resource)
