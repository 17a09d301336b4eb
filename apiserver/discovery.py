"""Discovery and OpenAPI: what kubectl reads before any command.

`/api`, `/apis`, `/api/v1`, `/apis/{group}/{version}` in the plain (unaggregated) forms,
which kubectl accepts when it does not get aggregated discovery, and `/openapi/v3` with
one document per group version whose operations carry `x-kubernetes-group-version-kind`
and a `fieldValidation` parameter: enough for `kubectl create/apply` to validate.
"""

from __future__ import annotations

from typing import Any

from api.resources import Resource, group_versions

VERSION = {
    "major": "1",
    "minor": "36",
    "gitVersion": "v1.36.0-kubelite",
    "gitCommit": "kubelite",
    "gitTreeState": "clean",
    "buildDate": "2026-11-28T00:00:00Z",
    "goVersion": "python",
    "compiler": "cpython",
    "platform": "linux/amd64",
}


def core_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_groups() -> dict[str, Any]:
    groups = []
    for api_version in group_versions():
        if "/" not in api_version:
            continue
        group, version = api_version.split("/")
        gv = {"groupVersion": api_version, "version": version}
        groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _api_resource(r: Resource) -> list[dict[str, Any]]:
    out = [{
        "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
        "verbs": list(r.verbs), "shortNames": list(r.short_names) or None,
        "categories": ["all"] if r.plural in ("pods", "deployments", "replicasets") else None,
    }]
    for sub in r.subresources:
        kind, verbs = r.kind, ["get", "patch", "update"]
        if sub == "scale":
            kind = "Scale"
        elif sub == "binding":
            kind, verbs = "Binding", ["create"]
        elif sub == "eviction":
            kind, verbs = "Eviction", ["create"]
        elif sub in ("log",):
            kind, verbs = "Pod", ["get"]
        elif sub == "exec":
            kind, verbs = "PodExecOptions", ["create", "get"]
        elif sub == "finalize":
            verbs = ["update"]
        out.append({"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                    "kind": kind, "verbs": verbs})
    return [{k: v for k, v in item.items() if v is not None} for item in out]


def resource_list(api_version: str) -> dict[str, Any] | None:
    resources = group_versions().get(api_version)
    if resources is None:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version,
            "resources": [item for r in resources for item in _api_resource(r)]}


def _openapi_path(api_version: str) -> str:
    return f"api/{api_version}" if "/" not in api_version else f"apis/{api_version}"


def openapi_root() -> dict[str, Any]:
    return {"paths": {
        _openapi_path(gv): {"serverRelativeURL": f"/openapi/v3/{_openapi_path(gv)}?hash=kubelite"}
        for gv in group_versions()
    }}


def openapi_document(path: str) -> dict[str, Any] | None:
    """An OpenAPI v3 document for one group version, without schemas: kubectl needs the
    operations' group-version-kind and the fieldValidation parameter."""
    for api_version, resources in group_versions().items():
        if _openapi_path(api_version) != path:
            continue
        group, _, version = api_version.rpartition("/")
        paths: dict[str, Any] = {}
        field_validation = {"name": "fieldValidation", "in": "query", "schema": {"type": "string"},
                            "description": "Strict, Warn or Ignore"}
        for r in resources:
            gvk = {"group": group, "version": version, "kind": r.kind}
            base = r.prefix() + ("/namespaces/{namespace}" if r.namespaced else "") + f"/{r.plural}"
            op = {"x-kubernetes-group-version-kind": gvk, "parameters": [field_validation],
                  "responses": {"200": {"description": "OK"}}}
            paths[base] = {"post": {**op, "operationId": f"create{r.kind}", "x-kubernetes-action": "post"},
                           "get": {**op, "operationId": f"list{r.kind}", "x-kubernetes-action": "list"}}
            paths[base + "/{name}"] = {
                "get": {**op, "operationId": f"read{r.kind}", "x-kubernetes-action": "get"},
                "put": {**op, "operationId": f"replace{r.kind}", "x-kubernetes-action": "put"},
                "patch": {**op, "operationId": f"patch{r.kind}", "x-kubernetes-action": "patch"},
                "delete": {**op, "operationId": f"delete{r.kind}", "x-kubernetes-action": "delete"},
            }
        return {"openapi": "3.0.0", "info": {"title": "kubelite", "version": "v1.36.0"}, "paths": paths,
                "components": {"schemas": {}}}
    return None
