"""Discovery and OpenAPI: what kubectl reads before any command.

`/api`, `/apis`, `/api/v1`, `/apis/{group}/{version}` in the plain (unaggregated) forms,
which kubectl accepts when it does not get aggregated discovery, and `/openapi/v3` with
one document per group version: operations that carry `x-kubernetes-group-version-kind`
and a `fieldValidation` parameter (what `kubectl create/apply` look for before validating
on the server), and the schemas of the kinds, generated from the pydantic models, which
`kubectl explain` walks.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from pydantic.json_schema import models_json_schema

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


# Kinds that are only ever created, to ask a question (apiserver/auth/reviews.py):
# (group version, resource, kind).
REVIEW_RESOURCES = (
    ("authentication.k8s.io/v1", "selfsubjectreviews", "SelfSubjectReview"),
    ("authorization.k8s.io/v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
)


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
    for api_version, _, _ in REVIEW_RESOURCES:
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
    reviews = [{"name": plural, "singularName": "", "namespaced": False, "kind": kind, "verbs": ["create"]}
               for gv, plural, kind in REVIEW_RESOURCES if gv == api_version]
    if reviews:
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version, "resources": reviews}
    resources = group_versions().get(api_version)
    if resources is None:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version,
            "resources": [item for r in resources for item in _api_resource(r)]}


def _openapi_path(api_version: str) -> str:
    return f"api/{api_version}" if "/" not in api_version else f"apis/{api_version}"


def openapi_root() -> dict[str, Any]:
    """Where each group version's document is; the hash changes with the document, so that
    kubectl's cache of it (keyed by that URL) never serves an old one."""
    return {"paths": {
        _openapi_path(gv): {"serverRelativeURL": f"/openapi/v3/{_openapi_path(gv)}?hash={_hash(gv)}"}
        for gv in group_versions()
    }}


@functools.cache
def _hash(api_version: str) -> str:
    doc = openapi_document(_openapi_path(api_version))
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16].upper()


@functools.cache
def openapi_document(path: str) -> dict[str, Any] | None:
    """The OpenAPI v3 document of one group version (cached: the models do not change)."""
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
                "components": {"schemas": _schemas(group, version, resources)}}
    return None


_REF = "#/components/schemas/{model}"
_INT_OR_STRING = "IntOrString"  # a port or a percentage: 8080, "http", 1, "25%"


def _schemas(group: str, version: str, resources: list[Resource]) -> dict[str, Any]:
    """The kinds' schemas and every schema they refer to, by model name; each kind's carries
    `x-kubernetes-group-version-kind`, which is how `kubectl explain` finds it."""
    refs, defs = models_json_schema([(r.model, "validation") for r in resources], by_alias=True,
                                    ref_template=_REF)
    schemas = {name: _openapi_schema(schema) for name, schema in defs["$defs"].items()}
    schemas[_INT_OR_STRING] = {"type": "string", "format": "int-or-string"}
    for r in resources:
        name = refs[(r.model, "validation")]["$ref"].rsplit("/", 1)[-1]
        schemas[name]["x-kubernetes-group-version-kind"] = [{"group": group, "version": version, "kind": r.kind}]
    return schemas


def _openapi_schema(schema: Any) -> Any:
    """pydantic's JSON Schema in the shapes OpenAPI and kubectl expect: an optional field is
    its type (not `anyOf` with null), a value that may be a number or a string refers to
    `IntOrString` as in Kubernetes' documents, a model's `extra="allow"` (how kubelite
    notices unknown fields) is not advertised as a map, and a description (the model's
    docstring) is one paragraph that kubectl wraps itself."""
    if isinstance(schema, list):
        return [_openapi_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _openapi_schema(v) for k, v in schema.items() if k != "title"}
    if isinstance(out.get("description"), str):  # a docstring: kubectl wraps the text itself
        out["description"] = " ".join(out["description"].split())
    if "anyOf" in out:
        variants = [v for v in out["anyOf"] if v != {"type": "null"}]
        if len(variants) < len(out["anyOf"]) and out.get("default") is None:
            out.pop("default", None)
        if len(variants) == 1:
            del out["anyOf"]
            out = {**variants[0], **out}
        elif sorted(str(v.get("type")) for v in variants) == ["integer", "string"]:
            del out["anyOf"]
            out = {"allOf": [{"$ref": _REF.format(model=_INT_OR_STRING)}], **out}
        else:
            out["anyOf"] = variants
    if out.get("additionalProperties") is True:
        del out["additionalProperties"]
    return out
