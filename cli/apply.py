"""`apply -f` and `create -f`: kubectl's client-side apply over strategic merge patch.

Apply keeps what the user last applied in the annotation
`kubectl.kubernetes.io/last-applied-configuration` and sends a *three-way* patch:

* changes and additions: what `modified` (the manifest) says that `current` (the live
  object) does not — fields the server defaulted or other writers set and the manifest
  never mentioned are left alone;
* deletions: what `original` (the last applied manifest) had and `modified` no longer
  has — only fields this user once set are ever removed.

Lists with a merge key (containers by name, ports by containerPort, env by name) are
diffed element by element and carry `$setElementOrder/<field>`, so changing one
container's image sends `{name, image}` only, and the server keeps that container's
ports, probes and the defaults it filled in. Sending the whole list as a merge patch
would replace it and lose them. An empty patch means "unchanged" and nothing is sent.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from api import resources
from api.client import Client
from api.errors import ApiError, NotFound
from api.patch import PatchSchema, json_equal, strategy_for
from cli import configdata
from cli.config import Connection
from cli.manifests import Manifest, ManifestError, load
from cli.printers import error_text, kind_name

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
FIELD_MANAGER = "kubectl-client-side-apply"
_MISSING: Any = object()

Outcome = Literal["created", "configured", "unchanged"]


class NamespaceMismatch(ValueError):
    """The manifest names one namespace and `-n` another: kubectl refuses rather than guess."""


@dataclass(slots=True)
class Applied:
    manifest: Manifest
    outcome: Outcome
    obj: dict[str, Any]

    def line(self) -> str:
        """`deployment.apps/web configured`."""
        name = (self.obj.get("metadata") or {}).get("name") or self.manifest.name
        return f"{kind_name(self.manifest.resource)}/{name} {self.outcome}"


def target_namespace(manifest: Manifest, flag: str | None, default: str) -> str | None:
    """The namespace an object goes to: its own, else `-n`, else the context's; None if cluster-scoped."""
    if not manifest.resource.namespaced:
        return None
    own = manifest.namespace
    if own and flag and own != flag:
        raise NamespaceMismatch(f'the namespace from the provided object "{own}" does not match the namespace '
                                f'"{flag}". You must pass \'--namespace={own}\' to perform this operation.')
    return own or flag or default


def with_last_applied(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of `obj` annotated with itself (minus that annotation), as kubectl stores it."""
    bare = copy.deepcopy(obj)
    annotations = (bare.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
        if not annotations:
            del bare["metadata"]["annotations"]
    out = copy.deepcopy(bare)
    out["metadata"].setdefault("annotations", {})[LAST_APPLIED] = json.dumps(bare, separators=(",", ":"),
                                                                            sort_keys=True) + "\n"
    return out


async def apply_one(client: Client, manifest: Manifest, namespace: str | None) -> Applied:
    res = manifest.resource
    obj = copy.deepcopy(manifest.obj)
    if not manifest.name:
        raise ValueError(f"{manifest.where()}: cannot use generateName with apply")
    if namespace:
        obj["metadata"]["namespace"] = namespace
    modified = with_last_applied(obj)
    params = {"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict"}
    try:
        current = await client.request("GET", res.path(namespace, manifest.name))
    except NotFound:
        created = await client.request("POST", res.path(namespace), json=modified, params=params)
        return Applied(manifest, "created", created)
    annotations = (current.get("metadata") or {}).get("annotations") or {}
    try:
        original = json.loads(annotations.get(LAST_APPLIED) or "{}")
    except ValueError:
        original = {}
    patch = three_way_patch(original if isinstance(original, dict) else {}, modified, current,
                            strategy_for(res.kind))
    if not patch:
        return Applied(manifest, "unchanged", current)
    patched = await client.request("PATCH", res.path(namespace, manifest.name), json=patch, params=params,
                                   content_type="application/strategic-merge-patch+json")
    return Applied(manifest, "configured", patched)


async def create_one(client: Client, manifest: Manifest, namespace: str | None) -> dict[str, Any]:
    obj = copy.deepcopy(manifest.obj)
    if namespace:
        obj["metadata"]["namespace"] = namespace
    result: dict[str, Any] = await client.request("POST", manifest.resource.path(namespace), json=obj,
                                                  params={"fieldValidation": "Strict"})
    return result


# ------------------------------------------------------------- the verbs


def _manifests(args: argparse.Namespace) -> list[Manifest] | None:
    try:
        return load(args.filename, recursive=args.recursive)
    except ManifestError as err:
        print(f"error: {err}", file=sys.stderr)
        return None


async def apply_cmd(args: argparse.Namespace, conn: Connection) -> int:
    """`apply -f`: every manifest is read first; then each object is applied and reported,
    and one failure does not stop the rest (exit 1 at the end, as kubectl)."""
    manifests = _manifests(args)
    if manifests is None:
        return 1
    async def apply(manifest: Manifest, ns: str | None) -> str:
        return (await apply_one(conn.api, manifest, ns)).line()

    return await _each(manifests, args, conn, apply, action="applying")


async def create_cmd(args: argparse.Namespace, conn: Connection) -> int:
    """`create -f FILE`, `create namespace NAME`, `create configmap NAME ...`, `create secret
    generic|tls|docker-registry NAME ...` (the objects from flags: `cli.configdata`)."""
    if args.what:
        if args.filename:
            raise ValueError("use either -f or a type to create, not both")
        resource, body = _from_flags(args)
        namespace = conn.namespace(args.namespace) if resource.namespaced else None
        created = await conn.api.request("POST", resource.path(namespace), json=body)
        group = f".{resource.group}" if resource.group else ""
        print(f"{resource.singular}{group}/{created['metadata']['name']} created")
        return 0
    if not args.filename:
        raise ValueError("must specify one of -f or a type to create (namespace, configmap, secret)")
    manifests = _manifests(args)
    if manifests is None:
        return 1
    async def create(manifest: Manifest, ns: str | None) -> str:
        obj = await create_one(conn.api, manifest, ns)
        return f"{kind_name(manifest.resource)}/{obj['metadata']['name']} created"

    return await _each(manifests, args, conn, create, action="creating")


def deployment(name: str, images: list[str], *, replicas: int, port: int | None,
               command: list[str]) -> dict[str, Any]:
    """The Deployment `kubectl create deployment NAME --image=IMG [--replicas N] [--port P] [-- CMD]`
    makes: label app=NAME, one container per image named after it, the command for a single image."""
    if not images:
        raise ValueError("create deployment needs --image=IMAGE")
    if command and len(images) > 1:
        raise ValueError("a command (after --) can only be given with a single --image")
    containers: list[dict[str, Any]] = []
    for image in images:
        base = image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]
        container: dict[str, Any] = {"name": base, "image": image}
        if command:
            container["command"] = command
        if port is not None:
            container["ports"] = [{"containerPort": port}]
        containers.append(container)
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}}}}


_CREATE_USAGE = ("use `create -f FILE`, `create namespace NAME`, `create deployment NAME --image IMG`, "
                 "`create configmap NAME [--from-literal K=V] "
                 "[--from-file [K=]PATH] [--from-env-file PATH]` or "
                 "`create secret generic|tls|docker-registry NAME ...`")


def _from_flags(args: argparse.Namespace) -> tuple[resources.Resource, dict[str, Any]]:
    """What `create TYPE [SUBTYPE] NAME --flags` makes."""
    what = list(args.what)
    kind = what[0]
    if kind in ("namespace", "ns") and len(what) == 2:
        return resources.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": what[1]}}
    if kind in ("deployment", "deploy") and len(what) >= 2:
        return resources.DEPLOYMENTS, deployment(what[1], args.image, replicas=args.replicas, port=args.port,
                                                 command=[*what[2:], *getattr(args, "command", [])])
    sources = {"literals": args.from_literal, "files": args.from_file, "env_files": args.from_env_file}
    if kind in ("configmap", "cm") and len(what) == 2:
        values = configdata.collect(**sources, kind="ConfigMap", name=what[1])
        return resources.CONFIGMAPS, configdata.configmap(what[1], values)
    if kind == "secret" and len(what) == 3:
        sub, name = what[1], what[2]
        if sub == "generic":
            values = configdata.collect(**sources, kind="Secret", name=name)
            return resources.SECRETS, configdata.secret(name, values, type_=args.type)
        if sub == "tls":
            if not args.cert or not args.key:
                raise ValueError("both --cert and --key are required for a tls secret")
            return resources.SECRETS, configdata.tls_secret(name, cert=args.cert, key=args.key)
        if sub == "docker-registry":
            return resources.SECRETS, configdata.docker_registry_secret(
                name, server=args.docker_server, username=args.docker_username or "",
                password=args.docker_password or "", email=args.docker_email)
    raise ValueError(_CREATE_USAGE)


async def _each(manifests: list[Manifest], args: argparse.Namespace, conn: Connection,
                verb: Callable[[Manifest, str | None], Awaitable[str]], *, action: str) -> int:
    """Run `verb` on every manifest, printing its line; one failure does not stop the rest
    (exit 1 at the end, as kubectl)."""
    failed = False
    for manifest in manifests:
        try:
            ns = target_namespace(manifest, args.namespace, conn.namespace(None))
            print(await verb(manifest, ns))
        except ApiError as err:
            print(error_text(err, source=manifest.source, action=action), file=sys.stderr)
            failed = True
        except ValueError as err:  # NamespaceMismatch, generateName
            print(f"error: {err}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


# ------------------------------------------------------------- three-way patch


def three_way_patch(original: dict[str, Any], modified: dict[str, Any], current: dict[str, Any],
                    schema: PatchSchema) -> dict[str, Any]:
    """The strategic merge patch that takes `current` to `modified`, deleting only what
    `original` had and `modified` dropped. `{}` when nothing needs to change."""
    patch: dict[str, Any] = {}
    for key, mod in modified.items():
        cur = current.get(key, _MISSING)
        orig = original.get(key, _MISSING)
        sub = schema.field_schema(key)
        if isinstance(mod, dict) and isinstance(cur, dict):
            diff = three_way_patch(orig if isinstance(orig, dict) else {}, mod, cur, sub)
            if diff and "retainKeys" in sub.strategies:
                diff["$retainKeys"] = sorted(mod)
            if diff:
                patch[key] = diff
        elif isinstance(mod, list) and isinstance(cur, list) and sub.merges:
            _merge_list_patch(patch, key, orig if isinstance(orig, list) else [], mod, cur, sub)
        elif cur is _MISSING or not json_equal(cur, mod):
            patch[key] = mod
    for key in original:
        if key not in modified and key in current:
            patch[key] = None
    return patch


def _merge_list_patch(patch: dict[str, Any], key: str, original: list[Any], modified: list[Any],
                      current: list[Any], schema: PatchSchema) -> None:
    merge_key = schema.merge_key
    if merge_key is None or not all(isinstance(e, dict) for e in (*modified, *current)):
        _primitive_list_patch(patch, key, original, modified, current)
        return
    if not all(merge_key in e for e in modified):
        if not json_equal(current, modified):
            patch[key] = modified  # no key to merge by: replace, as the server would
        return
    current_by = {e.get(merge_key): e for e in current}
    original_by = {e.get(merge_key): e for e in original if isinstance(e, dict)}
    wanted = [e[merge_key] for e in modified]
    entries: list[Any] = []
    for element in modified:
        k = element[merge_key]
        live = current_by.get(k)
        if live is None:
            entries.append(element)
            continue
        diff = three_way_patch(original_by.get(k, {}), element, live, schema.item_schema())
        if diff:
            entries.append({merge_key: k, **diff})
    for k in original_by:
        if k not in wanted and k in current_by:
            entries.append({"$patch": "delete", merge_key: k})
    live_order = [e.get(merge_key) for e in current if e.get(merge_key) in wanted]
    if entries:
        patch[key] = entries
    if entries or live_order != wanted:
        patch[f"$setElementOrder/{key}"] = [{merge_key: k} for k in wanted]


def _primitive_list_patch(patch: dict[str, Any], key: str, original: list[Any], modified: list[Any],
                          current: list[Any]) -> None:
    added = [v for v in modified if v not in current]
    removed = [v for v in original if v not in modified and v in current]
    if added:
        patch[key] = added
    if removed:
        patch[f"$deleteFromPrimitiveList/{key}"] = removed
    if added or removed:
        patch[f"$setElementOrder/{key}"] = list(modified)
