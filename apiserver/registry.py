"""The registry: Kubernetes' storage semantics for every resource, over `Storage`.

What each verb does, in order (the HTTP layer in `handlers.py` only parses and renders):

    create:  decode -> fieldValidation -> reset server-owned fields (uid, timestamps,
             status) -> defaults -> validate -> admission (namespace exists and is not
             terminating) -> etcd "absent -> put" transaction
    update:  decode -> read current -> resourceVersion precondition -> carry over what
             the verb may not change (status on the main resource, spec on /status) ->
             generation bump if spec changed -> defaults -> validate -> etcd CAS
    patch:   read current -> apply the patch -> update with the read revision as the
             precondition; a conflict with a concurrent writer re-reads and re-applies
    delete:  preconditions -> graceful (a bound pod: deletionTimestamp, the kubelet
             finishes it) or finalizers pending (deletionTimestamp, finalizers run) or
             gone at once

Nothing is written on any error: every check happens before the single etcd write.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from api import errors, jsoncodec
from api.base import KubeModel, drop_unknown_fields, now, unknown_fields
from api.defaults import apply_defaults
from api.meta import DeleteOptions, StatusCause
from api.patch import PatchError, json_patch, merge_patch, strategic_merge_patch, strategy_for
from api.resources import CONFIGMAPS, EVENTS, LEASES, NAMESPACES, NODES, PODS, SECRETS, SERVICES, Resource
from api.validation import invalid_error, parse_object, validate
from api.validation_config import check_config_update
from api.warnings import unsupported_field_warnings
from apiserver import allocator
from apiserver.allocator import Plan, ServiceAllocator
from apiserver.storage import REGISTRY, ClaimTaken, KeyExists, KeyNotFound, RevisionMismatch, Storage
from apiserver.watchcache import CachedObject, WatchCache, splice_resource_version, with_resource_version

FieldValidation = Literal["Strict", "Warn", "Ignore"]
PatchType = Literal["merge", "json", "strategic", "apply"]

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' generateName alphabet: no vowels, no 0/1/3
_CREATE_ON_UPDATE = {EVENTS.plural, LEASES.plural}
# Unconditional patches and deletes re-read and retry on a conflict, as Kubernetes' GuaranteedUpdate
# does; every round some writer wins, so this bounds only a pathological storm.
_MAX_PATCH_RETRIES = 64


def key_for(resource: Resource, namespace: str | None, name: str) -> str:
    if resource.namespaced:
        return f"{REGISTRY}{resource.plural}/{namespace}/{name}"
    return f"{REGISTRY}{resource.plural}/{name}"


def prefix_for(resource: Resource, namespace: str | None) -> str:
    if resource.namespaced and namespace:
        return f"{REGISTRY}{resource.plural}/{namespace}/"
    return f"{REGISTRY}{resource.plural}/"


def encode(obj: dict[str, Any]) -> bytes:
    """Stored form: the object without its resourceVersion (that is etcd's mod revision)."""
    meta = obj.get("metadata") or {}
    if "resourceVersion" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
    return jsoncodec.dumps(obj)


@dataclass
class Result:
    """An object as written or read, with the warnings to send back."""

    obj: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    created: bool = False
    deleted: bool = False  # the object is gone from storage (not merely marked for deletion)
    # `obj` as JSON, when the bytes written to etcd already are that (plus the spliced-in
    # resourceVersion): the response reuses them instead of encoding the object again.
    raw: bytes | None = None


def _qualified(resource: Resource) -> str:
    return resource.group_resource


def _conflict(resource: Resource, name: str) -> errors.Conflict:
    return errors.conflict(_qualified(resource), name,
                           "the object has been modified; please apply your changes to the latest version "
                           "and try again", group=resource.group)


class Registry:
    def __init__(self, storage: Storage, cache: WatchCache, *, services: ServiceAllocator | None = None) -> None:
        self.storage = storage
        self.cache = cache
        self.services = services or ServiceAllocator(storage)
        # Revision of this server's latest namespace write. Admission reads namespaces from
        # the cache, which must first have caught up with our own writes: a namespace marked
        # for deletion an instant ago must already refuse new objects.
        self._namespace_written_at = 0

    # ------------------------------------------------------------------ decoding

    def _decode(self, resource: Resource, body: Any, namespace: str | None, *,
                field_validation: FieldValidation) -> tuple[KubeModel, list[str]]:
        if not isinstance(body, dict):
            raise errors.BadRequest(f"the body must be a JSON or YAML object describing a {resource.kind}")
        kind = body.get("kind")
        api_version = body.get("apiVersion")
        if kind not in (None, resource.kind) or api_version not in (None, resource.api_version):
            raise errors.BadRequest(
                f'the API version in the data ({api_version}) does not match the expected API version '
                f'({resource.api_version}) or kind {kind} is not {resource.kind}')
        body = {**body, "apiVersion": resource.api_version, "kind": resource.kind}
        meta = body.setdefault("metadata", {}) if isinstance(body.get("metadata"), dict | type(None)) else None
        if meta is None:
            raise errors.BadRequest("metadata must be an object")
        if body["metadata"] is None:
            body["metadata"] = {}
        if resource.namespaced:
            given = body["metadata"].get("namespace")
            if given and namespace and given != namespace:
                raise errors.BadRequest("the namespace of the provided object does not match the namespace "
                                        "sent on the request")
            body["metadata"] = {**body["metadata"], "namespace": namespace or given}
        elif body["metadata"].get("namespace"):
            body["metadata"] = {k: v for k, v in body["metadata"].items() if k != "namespace"}
        obj = parse_object(resource.model, body)
        warnings: list[str] = []
        unknown = unknown_fields(obj)
        if unknown and field_validation == "Strict":
            causes = [StatusCause(reason="FieldValueUnknown", message="field not declared in schema", field=p)
                      for p in unknown]
            raise invalid_error(resource.kind, resource.group, obj.metadata.name, causes)  # type: ignore[attr-defined]
        if unknown and field_validation == "Warn":
            warnings += [f'unknown field "{p}"' for p in unknown]
        if unknown:
            drop_unknown_fields(obj)
        return obj, warnings

    def _validate(self, resource: Resource, obj: KubeModel) -> list[str]:
        apply_defaults(obj)
        causes = validate(obj)
        if causes:
            raise invalid_error(resource.kind, resource.group, obj.metadata.name, causes)  # type: ignore[attr-defined]
        return unsupported_field_warnings(obj)

    async def _check_namespace(self, resource: Resource, namespace: str | None) -> None:
        if not resource.namespaced:
            return
        if not namespace:
            raise errors.BadRequest("a namespace is required for namespaced resources")
        if self._namespace_written_at > self.cache.revision:
            await self.cache.wait_for(self._namespace_written_at)
        ns = self.cache[NAMESPACES.plural].objects.get(key_for(NAMESPACES, None, namespace))
        if ns is None:
            # The cache may lag a namespace created an instant ago: ask etcd before refusing.
            kv = await self.storage.get(key_for(NAMESPACES, None, namespace))
            if kv is None:
                raise errors.not_found("namespaces", namespace, kind="namespaces")
            ns_obj = json.loads(kv.value)
        else:
            ns_obj = ns.obj
        if ns_obj.get("metadata", {}).get("deletionTimestamp"):
            raise errors.Forbidden(
                f'{resource.plural} "" is forbidden: unable to create new content in namespace {namespace} '
                "because it is being terminated", kind=resource.plural)

    # ------------------------------------------------------------------ reads

    async def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        kv = await self.storage.get(key_for(resource, namespace, name))
        if kv is None:
            raise errors.not_found(_qualified(resource), name, group=resource.group, kind=resource.plural)
        return with_resource_version(kv.value, kv.mod_revision)

    # ------------------------------------------------------------------ create

    async def create(self, resource: Resource, namespace: str | None, body: Any, *,
                     field_validation: FieldValidation = "Strict", dry_run: bool = False) -> Result:
        obj, warnings = self._decode(resource, body, namespace, field_validation=field_validation)
        meta = obj.metadata  # type: ignore[attr-defined]
        if not meta.name and meta.generate_name:
            meta.name = meta.generate_name + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
        meta.uid = str(uuid.uuid4())
        meta.creation_timestamp = now()
        meta.resource_version = None
        meta.deletion_timestamp = None
        meta.deletion_grace_period_seconds = None
        meta.generation = 1
        self._prepare_create(resource, obj)
        warnings += self._validate(resource, obj)
        await self._check_namespace(resource, meta.namespace)
        key = key_for(resource, meta.namespace, meta.name)
        for _ in range(_MAX_PATCH_RETRIES):
            data = obj.to_dict()
            plan = await self._allocate(resource, data, None)
            if dry_run:
                return Result(data, warnings, created=True)
            stored = encode(data)
            try:
                revision = await self.storage.create(key, stored, claims=plan.claims)
            except KeyExists as err:
                raise errors.already_exists(_qualified(resource), meta.name, group=resource.group) from err
            except ClaimTaken as err:
                self._raise_if_requested(data, plan, err)
                continue  # another server took what this one picked: pick again
            data["metadata"]["resourceVersion"] = str(revision)
            self._note_write(resource, revision)
            return Result(data, warnings, created=True, raw=splice_resource_version(stored, revision))
        raise errors.ServiceUnavailable(f"could not allocate for {resource.kind} {meta.name}: try again")

    async def _allocate(self, resource: Resource, data: dict[str, Any], old: dict[str, Any] | None) -> Plan:
        """What a Service write claims and frees (ClusterIP, NodePorts); nothing for other kinds."""
        if resource is not SERVICES:
            return Plan()
        return await self.services.plan(data, old)

    @staticmethod
    def _raise_if_requested(data: dict[str, Any], plan: Plan, err: ClaimTaken) -> None:
        requested = [key for key in err.keys if key not in plan.picked]
        if requested:
            raise allocator.taken_error(data, requested) from err

    @staticmethod
    def _releases(resource: Resource, obj: dict[str, Any]) -> list[str]:
        return allocator.held(obj) if resource is SERVICES else []

    def _note_write(self, resource: Resource, revision: int) -> None:
        if resource is NAMESPACES:
            self._namespace_written_at = max(self._namespace_written_at, revision)

    @staticmethod
    def _prepare_create(resource: Resource, obj: KubeModel) -> None:
        from api.core import PodStatus

        if resource is PODS:
            obj.status = PodStatus(phase="Pending", qos_class=_qos_class(obj))  # type: ignore[attr-defined]
        elif resource.has_generation or resource is SERVICES:
            obj.status = None  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ update

    async def update(self, resource: Resource, namespace: str | None, name: str, body: Any, *,
                     subresource: str | None = None, field_validation: FieldValidation = "Strict",
                     dry_run: bool = False) -> Result:
        obj, warnings = self._decode(resource, body, namespace, field_validation=field_validation)
        meta = obj.metadata  # type: ignore[attr-defined]
        if meta.name and meta.name != name:
            raise errors.BadRequest(f'the name of the object ({meta.name}) does not match the name on the URL '
                                    f'({name})')
        meta.name = name
        key = key_for(resource, namespace, name)
        kv = await self.storage.get(key)
        if kv is None:
            if subresource is None and resource.plural in _CREATE_ON_UPDATE:
                return await self.create(resource, namespace, obj.to_dict(), field_validation="Ignore",
                                         dry_run=dry_run)
            raise errors.not_found(_qualified(resource), name, group=resource.group, kind=resource.plural)
        if meta.resource_version and meta.resource_version != str(kv.mod_revision):
            raise _conflict(resource, name)
        old = with_resource_version(kv.value, kv.mod_revision)
        result = await self._write_update(resource, old, obj, kv.mod_revision, subresource=subresource,
                                          dry_run=dry_run)
        result.warnings[:0] = warnings
        return result

    async def _write_update(self, resource: Resource, old: dict[str, Any], new: KubeModel, revision: int, *,
                            subresource: str | None, dry_run: bool = False) -> Result:
        merged = self._merge_for_update(resource, old, new.to_dict(), subresource)
        if resource is SERVICES:
            allocator.carry_over(old, merged)
        obj = parse_object(resource.model, merged)
        warnings = self._validate(resource, obj)
        if resource is PODS and subresource is None:
            self._check_pod_update(old, obj.to_dict())
        data = obj.to_dict()
        data["metadata"].pop("resourceVersion", None)
        self._check_config_update(resource, old, data)
        meta = data["metadata"]
        key = key_for(resource, meta.get("namespace"), meta["name"])
        plan = await self._allocate(resource, data, old)
        if dry_run:  # nothing written: the object keeps the resourceVersion it has
            return Result({**data, "metadata": {**meta, "resourceVersion": str(revision)}}, warnings)
        had_finalizers = bool(old.get("metadata", {}).get("finalizers"))
        if (meta.get("deletionTimestamp") and had_finalizers and not meta.get("finalizers")
                and not _graceful_pending(resource, data)):
            # The last finalizer is gone from an object being deleted: it goes now.
            try:
                deleted_at = await self.storage.delete(key, expected=revision, releases=self._releases(resource, old))
            except RevisionMismatch as err:
                raise _conflict(resource, meta["name"]) from err
            meta["resourceVersion"] = str(deleted_at)
            return Result(data, warnings, deleted=True)
        stored = encode(data)
        try:
            new_revision = await self.storage.update(key, stored, expected=revision, claims=plan.claims,
                                                     releases=plan.releases)
        except (RevisionMismatch, KeyNotFound) as err:
            raise _conflict(resource, meta["name"]) from err
        except ClaimTaken as err:
            self._raise_if_requested(data, plan, err)
            raise _conflict(resource, meta["name"]) from err  # a picked value was taken: the client retries
        meta["resourceVersion"] = str(new_revision)
        self._note_write(resource, new_revision)
        return Result(data, warnings, raw=splice_resource_version(stored, new_revision))

    @staticmethod
    def _merge_for_update(resource: Resource, old: dict[str, Any], new: dict[str, Any],
                          subresource: str | None) -> dict[str, Any]:
        """What an update may change: the status subresource changes status only; the main
        resource changes everything but status (for kinds with a status subresource) and
        the server-owned metadata."""
        old_meta = old.get("metadata", {})
        if subresource == "status":
            out = {**old, "status": new.get("status")}
            if out["status"] is None:
                out.pop("status")
            return out
        out = dict(new)
        meta = dict(new.get("metadata", {}))
        for owned in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "namespace", "name", "generation"):
            if owned in old_meta:
                meta[owned] = old_meta[owned]
            else:
                meta.pop(owned, None)
        if "status" in resource.subresources:
            if "status" in old:
                out["status"] = old["status"]
            else:
                out.pop("status", None)
        if old.get("spec") != new.get("spec") and resource.has_generation:
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        out["metadata"] = meta
        return out

    @staticmethod
    def _check_config_update(resource: Resource, old: dict[str, Any], new: dict[str, Any]) -> None:
        """ConfigMaps and Secrets: `immutable` and a Secret's `type` (stringData is already
        folded into data by the defaults, so it is never stored)."""
        if resource is CONFIGMAPS or resource is SECRETS:
            causes = check_config_update(old, new)
            if causes:
                raise invalid_error(resource.kind, resource.group, new["metadata"].get("name"), causes)

    @staticmethod
    def _check_pod_update(old: dict[str, Any], new: dict[str, Any]) -> None:
        """Pods are mostly immutable: images, activeDeadlineSeconds and new tolerations may change."""
        def mutable_view(spec: dict[str, Any]) -> dict[str, Any]:
            spec = json.loads(json.dumps(spec))
            for group in ("containers", "initContainers"):
                for c in spec.get(group) or []:
                    c.pop("image", None)
            spec.pop("activeDeadlineSeconds", None)
            spec.pop("tolerations", None)
            if not spec.get("nodeName"):
                spec.pop("nodeName", None)
            return spec

        old_spec, new_spec = old.get("spec", {}), new.get("spec", {})
        if old_spec.get("nodeName") and new_spec.get("nodeName") != old_spec.get("nodeName"):
            raise _pod_forbidden()
        a, b = mutable_view(old_spec), mutable_view(new_spec)
        b.setdefault("nodeName", a.get("nodeName")) if a.get("nodeName") else None
        if a != b:
            raise _pod_forbidden()

    # ------------------------------------------------------------------ patch

    async def patch(self, resource: Resource, namespace: str | None, name: str, patch: Any,
                    patch_type: PatchType, *, subresource: str | None = None,
                    field_validation: FieldValidation = "Strict", dry_run: bool = False) -> Result:
        key = key_for(resource, namespace, name)
        for _ in range(_MAX_PATCH_RETRIES):
            kv = await self.storage.get(key)
            if kv is None:
                if patch_type == "apply" and subresource is None:
                    return await self.create(resource, namespace, patch, field_validation=field_validation,
                                             dry_run=dry_run)
                raise errors.not_found(_qualified(resource), name, group=resource.group, kind=resource.plural)
            old = with_resource_version(kv.value, kv.mod_revision)
            patched = self._apply_patch(resource, old, patch, patch_type)
            wanted_rv = _patch_resource_version(patch)
            if wanted_rv and wanted_rv != str(kv.mod_revision):
                raise _conflict(resource, name)
            obj, warnings = self._decode(resource, patched, namespace, field_validation=field_validation)
            try:
                result = await self._write_update(resource, old, obj, kv.mod_revision, subresource=subresource,
                                                  dry_run=dry_run)
            except errors.Conflict:
                if wanted_rv:
                    raise
                continue  # a concurrent writer won: re-read and re-apply the patch
            result.warnings[:0] = warnings
            return result
        raise _conflict(resource, name)

    @staticmethod
    def _apply_patch(resource: Resource, old: dict[str, Any], patch: Any, patch_type: PatchType) -> Any:
        try:
            if patch_type == "json":
                if not isinstance(patch, list):
                    raise errors.BadRequest("a JSON patch must be a list of operations")
                return json_patch(old, patch)
            if not isinstance(patch, dict):
                raise errors.BadRequest("the patch must be a JSON object")
            if patch_type == "merge":
                return merge_patch(old, patch)
            # Server-side apply is approximated by a strategic merge of the applied
            # configuration; kubelite does not track field managers.
            return strategic_merge_patch(old, patch, strategy_for(resource.kind))
        except PatchError as err:
            raise errors.Invalid(f"the patch could not be applied: {err}", kind=resource.kind) from err

    # ------------------------------------------------------------------ delete

    async def delete(self, resource: Resource, namespace: str | None, name: str,
                     options: DeleteOptions, *, dry_run: bool = False) -> Result:
        key = key_for(resource, namespace, name)
        for _ in range(_MAX_PATCH_RETRIES):
            kv = await self.storage.get(key)
            if kv is None:
                raise errors.not_found(_qualified(resource), name, group=resource.group, kind=resource.plural)
            obj = with_resource_version(kv.value, kv.mod_revision)
            meta = obj["metadata"]
            pre = options.preconditions
            if pre is not None and pre.uid and pre.uid != meta.get("uid"):
                raise errors.conflict(_qualified(resource), name,
                                      f"Precondition failed: UID in precondition: {pre.uid}, UID in object "
                                      f"meta: {meta.get('uid')}", group=resource.group)
            if pre is not None and pre.resource_version and pre.resource_version != str(kv.mod_revision):
                raise errors.conflict(_qualified(resource), name,
                                      f"Precondition failed: ResourceVersion in precondition: "
                                      f"{pre.resource_version}, ResourceVersion in object meta: {kv.mod_revision}",
                                      group=resource.group)
            marked = self._mark_for_deletion(resource, obj, options)
            if dry_run:
                return Result(marked or obj, deleted=marked is None)
            try:
                if marked is None:
                    revision = await self.storage.delete(key, expected=kv.mod_revision,
                                                         releases=self._releases(resource, obj))
                    meta["resourceVersion"] = str(revision)
                    return Result(obj, deleted=True)
                revision = await self.storage.update(key, encode(marked), expected=kv.mod_revision)
                marked["metadata"]["resourceVersion"] = str(revision)
                self._note_write(resource, revision)
                return Result(marked)
            except (RevisionMismatch, KeyNotFound):
                continue
        raise _conflict(resource, name)

    @staticmethod
    def _mark_for_deletion(resource: Resource, obj: dict[str, Any],
                           options: DeleteOptions) -> dict[str, Any] | None:
        """The object as marked for deletion, or None if it should go from storage now."""
        meta = dict(obj["metadata"])
        finalizers = list(meta.get("finalizers") or [])
        policy = options.propagation_policy
        if options.orphan_dependents is True and policy is None:
            policy = "Orphan"
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        marked = {**obj, "metadata": meta}
        stamp = now()
        if resource is NAMESPACES:
            spec_finalizers = (obj.get("spec") or {}).get("finalizers") or []
            if spec_finalizers or finalizers:
                meta.setdefault("deletionTimestamp", _fmt(stamp))
                meta.setdefault("deletionGracePeriodSeconds", 0)
                meta["finalizers"] = finalizers or None
                if meta["finalizers"] is None:
                    meta.pop("finalizers")
                marked["status"] = {**(obj.get("status") or {}), "phase": "Terminating"}
                return marked
            return None
        if resource is PODS and (obj.get("spec") or {}).get("nodeName"):
            grace = options.grace_period_seconds
            if grace is None:
                grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            phase = (obj.get("status") or {}).get("phase")
            if grace > 0 and phase not in ("Succeeded", "Failed"):
                current = meta.get("deletionGracePeriodSeconds")
                if current is None or grace < current:
                    meta["deletionGracePeriodSeconds"] = grace
                    meta["deletionTimestamp"] = _fmt(stamp + timedelta(seconds=grace))
                if finalizers:
                    meta["finalizers"] = finalizers
                return marked
        if finalizers:
            meta.setdefault("deletionTimestamp", _fmt(stamp))
            meta.setdefault("deletionGracePeriodSeconds", 0)
            meta["finalizers"] = finalizers
            return marked
        return None

    async def finalize_namespace(self, name: str, body: Any) -> Result:
        """PUT /api/v1/namespaces/{name}/finalize: set spec.finalizers; an empty list on a
        terminating namespace deletes it."""
        kv = await self.storage.get(key_for(NAMESPACES, None, name))
        if kv is None:
            raise errors.not_found("namespaces", name, kind="namespaces")
        old = with_resource_version(kv.value, kv.mod_revision)
        finalizers = ((body or {}).get("spec") or {}).get("finalizers") or []
        new = {**old, "spec": {**(old.get("spec") or {}), "finalizers": finalizers}}
        if not finalizers:
            new["spec"].pop("finalizers")
        key = key_for(NAMESPACES, None, name)
        meta = new["metadata"]
        try:
            if meta.get("deletionTimestamp") and not finalizers and not meta.get("finalizers"):
                revision = await self.storage.delete(key, expected=kv.mod_revision)
                meta["resourceVersion"] = str(revision)
                return Result(new, deleted=True)
            revision = await self.storage.update(key, encode(new), expected=kv.mod_revision)
        except (RevisionMismatch, KeyNotFound) as err:
            raise _conflict(NAMESPACES, name) from err
        meta["resourceVersion"] = str(revision)
        return Result(new)

    async def write_raw(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        """Compare-and-swap an already validated object at its resourceVersion (used by
        /binding, which changes only server-checked fields)."""
        meta = obj["metadata"]
        key = key_for(resource, meta.get("namespace"), meta["name"])
        try:
            revision = await self.storage.update(key, encode(obj), expected=int(meta["resourceVersion"]))
        except (RevisionMismatch, KeyNotFound) as err:
            raise _conflict(resource, meta["name"]) from err
        meta["resourceVersion"] = str(revision)
        return obj

    # ------------------------------------------------------------------ lists

    def select(self, resource: Resource, namespace: str | None,
               predicate: Callable[[dict[str, Any]], bool]) -> list[CachedObject]:
        return [o for o in self.cache[resource.plural].snapshot(prefix_for(resource, namespace))
                if predicate(o.obj)]


def _patch_resource_version(patch: Any) -> str | None:
    """The resourceVersion a patch itself asks for (a precondition), if any. The patched
    object always carries the stored one; only the client's own makes the patch conditional."""
    if isinstance(patch, dict):
        rv = (patch.get("metadata") or {}).get("resourceVersion")
        return str(rv) if rv else None
    if isinstance(patch, list):
        for op in patch:
            if isinstance(op, dict) and op.get("path") == "/metadata/resourceVersion" and op.get("op") in (
                    "replace", "add", "test"):
                return str(op.get("value"))
    return None


def _fmt(value: Any) -> str:
    return str(value.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _graceful_pending(resource: Resource, data: dict[str, Any]) -> bool:
    """A bound pod being deleted gracefully stays until the kubelet removes it."""
    return resource is PODS and bool((data.get("spec") or {}).get("nodeName")) and \
        (data.get("status") or {}).get("phase") not in ("Succeeded", "Failed") and \
        (data["metadata"].get("deletionGracePeriodSeconds") or 0) > 0


def _pod_forbidden() -> errors.Invalid:
    cause = StatusCause(reason="FieldValueForbidden", field="spec",
                        message="Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                                "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                                "(only additions to existing tolerations)")
    return invalid_error("Pod", "", None, [cause])


def _qos_class(pod: Any) -> str:
    containers = [*(pod.spec.init_containers or []), *pod.spec.containers]
    requests_set = limits_set = False
    guaranteed = True
    for c in containers:
        res = c.resources
        limits = (res.limits if res else None) or {}
        requests = (res.requests if res else None) or {}
        requests_set |= bool(requests)
        limits_set |= bool(limits)
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits[name]) != limits[name]:
                guaranteed = False
    if guaranteed and limits_set:
        return "Guaranteed"
    if requests_set or limits_set:
        return "Burstable"
    return "BestEffort"


__all__ = ["NODES", "Registry", "Result", "encode", "key_for", "prefix_for"]
