"""Asking the server about yourself: `kubectl auth whoami` and `kubectl auth can-i`.

    POST /apis/authentication.k8s.io/v1/selfsubjectreviews        -> who the server thinks you are
    POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews   -> whether you may do something

Both answer with the object sent plus a `status`, and are open to every authenticated user
(Kubernetes' `system:basic-user`): a question about yourself reveals nothing about others.
The answer comes from the very functions that guard every request (`authz.authorize` and
`authz.authorize_path`), so `can-i` cannot disagree with what the server then does; the one
thing it cannot know is which node a pod is bound to, so a node asking about writes to
pods is told no (its real writes to its own pods are allowed).

A server without authentication (plain HTTP on loopback) allows everything and says so.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api import errors
from apiserver.auth import authz
from apiserver.auth.authn import USER
from apiserver.auth.pki import Identity
from apiserver.handlers import json_response, read_body

SELF_SUBJECT_REVIEW = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
SELF_SUBJECT_ACCESS_REVIEW = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"

_NO_AUTHORIZATION = "this API server authorizes nothing: it serves plain HTTP to local clients only"


def add_routes(app: web.Application) -> None:
    """The two endpoints; the user is the one the auth middleware authenticated (none on a
    server without authentication)."""

    async def whoami(request: web.Request) -> web.Response:
        body = await _body(request, "SelfSubjectReview", "authentication.k8s.io/v1")
        return json_response({**body, "status": {"userInfo": _user_info(request.get(USER))}}, status=201)

    async def can_i(request: web.Request) -> web.Response:
        body = await _body(request, "SelfSubjectAccessReview", "authorization.k8s.io/v1")
        spec = body.get("spec")
        status = access_review(request.get(USER), spec if isinstance(spec, dict) else {})
        return json_response({**body, "status": status}, status=201)

    app.router.add_post(SELF_SUBJECT_REVIEW, whoami)
    app.router.add_post(SELF_SUBJECT_ACCESS_REVIEW, can_i)


def access_review(user: Identity | None, spec: dict[str, Any]) -> dict[str, Any]:
    """The `status` of a SelfSubjectAccessReview for `spec`."""
    if user is None:
        return {"allowed": True, "reason": _NO_AUTHORIZATION}
    resource = spec.get("resourceAttributes")
    path = spec.get("nonResourceAttributes")
    if isinstance(resource, dict) and resource.get("resource"):
        allowed, reason = authz.authorize(
            user, str(resource.get("verb") or ""), str(resource["resource"]), resource.get("namespace") or None,
            resource.get("name") or None, resource.get("subresource") or None)
    elif isinstance(path, dict) and path.get("path"):
        allowed, reason = authz.authorize_path(user, str(path.get("verb") or ""), str(path["path"]))
    else:
        raise errors.Invalid("SelfSubjectAccessReview is invalid: spec: exactly one of resourceAttributes "
                             "(with a resource) or nonResourceAttributes (with a path) is required",
                             kind="SelfSubjectAccessReview")
    status: dict[str, Any] = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return status


def _user_info(user: Identity | None) -> dict[str, Any]:
    if user is None:
        return {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
    return {"username": user.user, "groups": list(user.groups)}


async def _body(request: web.Request, kind: str, api_version: str) -> dict[str, Any]:
    body = await read_body(request)
    if not isinstance(body, dict) or body.get("kind") not in (None, kind):
        raise errors.BadRequest(f"the body must be a {kind} ({api_version})")
    return {**body, "apiVersion": api_version, "kind": kind, "metadata": body.get("metadata") or {}}
