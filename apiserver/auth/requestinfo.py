"""What a request asks to do, in the terms authorization speaks: verb, resource, namespace, name.

A pure parse of method, path and query, modelled on Kubernetes' RequestInfo and independent of
the resource table, so an unknown resource is still authorized (and refused) before the
handlers could answer 404 and reveal what exists:

    GET    /api/v1/namespaces/default/pods            list pods in default (watch if ?watch=true)
    GET    /api/v1/namespaces/default/pods/web        get pods "web"
    PUT    /api/v1/namespaces/default/pods/web/status update pods/status "web"
    POST   /api/v1/namespaces/default/pods            create pods (the name is in the body)
    DELETE /api/v1/namespaces/default/pods            deletecollection pods
    GET    /api/v1/namespaces/default                 get namespaces "default" (namespace = its name)
    PUT    /api/v1/namespaces/foo/finalize            update namespaces/finalize "foo"
    GET    /apis/apps/v1/deployments                  list deployments.apps in all namespaces
    GET    /api  /apis/apps/v1  /version  /healthz    non-resource (discovery, health)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

_NAMESPACE_SUBRESOURCES = {"status", "finalize"}
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True, slots=True)
class RequestInfo:
    verb: str
    path: str
    resource: str | None = None  # None: a non-resource request (discovery, health, metrics)
    group: str = ""
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None

    @property
    def is_resource(self) -> bool:
        return self.resource is not None


def request_info(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    # Split exactly as handlers.py does (empty segments kept), so that authorization and the
    # handler can never read one path as two different targets.
    parts = path.rstrip("/").split("/")[1:]
    m = method.upper()
    if m in ("GET", "HEAD"):
        plain_verb = "get"
    else:
        plain_verb = _VERBS.get(m) or ("delete" if m == "DELETE" else m.lower())
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return RequestInfo(plain_verb, path)
    if not rest:
        return RequestInfo(plain_verb, path)  # the group version's resource list: discovery

    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 2:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]  # /namespaces/{ns}/{resource}/...
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None

    if m in ("GET", "HEAD"):
        if name is None:
            verb = "watch" if query.get("watch", "").lower() in ("true", "1") else "list"
        else:
            verb = "get"
    elif m == "DELETE":
        verb = "delete" if name is not None else "deletecollection"
    else:
        verb = plain_verb
    return RequestInfo(verb, path, resource, group, namespace, name, subresource)
