"""Where strategic merge patch merges lists: Kubernetes' patchMergeKey/patchStrategy tags.

A `PatchSchema` describes one JSON value: for an object, `fields` gives the schema of
each known member; for a list, `items` gives the schema of its elements, and
`merge_key`/`strategies` say how the list merges. Anything not described is merged
the default way (objects recursively, lists replaced), which is also what a
Kubernetes struct field without tags gets.

Schemas are written as nested dicts (`PatchSchema.from_spec`): field names map to
sub-specs, `"[]"` descends into list items, `"$mergeKey"` and `"$strategy"`
("merge", "retainKeys", "merge,retainKeys", "replace") annotate a field. The tables
below transcribe the tags of k8s.io/api core/v1 and apps/v1 and of ObjectMeta for
the kinds kubelite serves; notably `tolerations`, `taints`, `envFrom` and
`containerStatuses` carry no tag upstream and are replaced as a whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PatchSchema", "strategy_for"]


@dataclass(frozen=True)
class PatchSchema:
    """Merge metadata for one JSON value and, recursively, its members or items."""

    fields: Mapping[str, PatchSchema] = field(default_factory=dict)
    items: PatchSchema | None = None
    merge_key: str | None = None
    strategies: frozenset[str] = frozenset()

    @property
    def merges(self) -> bool:
        """Whether a list with this schema merges (rather than being replaced)."""
        return "merge" in self.strategies

    def field_schema(self, name: str) -> PatchSchema:
        return self.fields.get(name, _EMPTY)

    def item_schema(self) -> PatchSchema:
        return self.items or _EMPTY

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> PatchSchema:
        """Build from the nested-dict notation described in the module docstring."""
        fields: dict[str, PatchSchema] = {}
        items: PatchSchema | None = None
        merge_key: str | None = None
        strategies: frozenset[str] = frozenset()
        for key, value in spec.items():
            if key == "$mergeKey":
                merge_key = str(value)
            elif key == "$strategy":
                strategies = frozenset(s.strip() for s in str(value).split(",") if s.strip())
            elif key == "[]":
                items = cls.from_spec(value)
            else:
                fields[key] = cls.from_spec(value)
        return cls(fields=fields, items=items, merge_key=merge_key, strategies=strategies)


_EMPTY = PatchSchema()


def _merge_by(key: str, item: Mapping[str, Any] | None = None, *, strategy: str = "merge") -> dict[str, Any]:
    return {"$mergeKey": key, "$strategy": strategy, "[]": dict(item or {})}


_OBJECT_META: dict[str, Any] = {
    "ownerReferences": _merge_by("uid"),
    "finalizers": {"$strategy": "merge"},
}

_CONTAINER: dict[str, Any] = {
    "ports": _merge_by("containerPort"),
    "env": _merge_by("name"),
    "volumeMounts": _merge_by("mountPath"),
    "volumeDevices": _merge_by("devicePath"),
}

_POD_SPEC: dict[str, Any] = {
    "volumes": _merge_by("name", strategy="merge,retainKeys"),
    "initContainers": _merge_by("name", _CONTAINER),
    "containers": _merge_by("name", _CONTAINER),
    "ephemeralContainers": _merge_by("name", _CONTAINER),
    "imagePullSecrets": _merge_by("name"),
    "hostAliases": _merge_by("ip"),
    "topologySpreadConstraints": _merge_by("topologyKey"),
    "schedulingGates": _merge_by("name"),
    "resourceClaims": _merge_by("name", strategy="merge,retainKeys"),
}

_POD_STATUS: dict[str, Any] = {
    "conditions": _merge_by("type"),
    "hostIPs": _merge_by("ip"),
    "podIPs": _merge_by("ip"),
    "resourceClaimStatuses": _merge_by("name", strategy="merge,retainKeys"),
}

_POD_TEMPLATE_SPEC: dict[str, Any] = {"metadata": _OBJECT_META, "spec": _POD_SPEC}

_WORKLOAD_STATUS: dict[str, Any] = {"conditions": _merge_by("type")}

_SPECS: dict[str, dict[str, Any]] = {
    "Pod": {"metadata": _OBJECT_META, "spec": _POD_SPEC, "status": _POD_STATUS},
    "PodTemplateSpec": _POD_TEMPLATE_SPEC,
    "PodTemplate": {"metadata": _OBJECT_META, "template": _POD_TEMPLATE_SPEC},
    "Deployment": {
        "metadata": _OBJECT_META,
        "spec": {"template": _POD_TEMPLATE_SPEC, "strategy": {"$strategy": "retainKeys"}},
        "status": _WORKLOAD_STATUS,
    },
    "ReplicaSet": {
        "metadata": _OBJECT_META,
        "spec": {"template": _POD_TEMPLATE_SPEC},
        "status": _WORKLOAD_STATUS,
    },
    "Node": {
        "metadata": _OBJECT_META,
        "spec": {"podCIDRs": {"$strategy": "merge"}},
        "status": {"conditions": _merge_by("type"), "addresses": _merge_by("type")},
    },
    "Namespace": {"metadata": _OBJECT_META, "status": {"conditions": _merge_by("type")}},
    "Event": {"metadata": _OBJECT_META},
    "Lease": {"metadata": _OBJECT_META},
}

_SCHEMAS: dict[str, PatchSchema] = {kind: PatchSchema.from_spec(spec) for kind, spec in _SPECS.items()}
_GENERIC = PatchSchema.from_spec({"metadata": _OBJECT_META})


def strategy_for(kind: str) -> PatchSchema:
    """The strategic-merge schema of a kind; unknown kinds get ObjectMeta's rules only."""
    return _SCHEMAS.get(kind, _GENERIC)
