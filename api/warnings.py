"""Warnings for fields a manifest sets that kubelite accepts but does not act on yet.

They reach the client as `Warning: 299 - "..."` headers, which kubectl prints.
"""

from __future__ import annotations

from api.base import KubeModel
from api.core import Pod, PodSpec, PodTemplateSpec

_IGNORED_POD_FIELDS = (
    "security_context", "affinity.pod_affinity", "affinity.pod_anti_affinity", "topology_spread_constraints",
    "service_account_name", "image_pull_secrets", "readiness_gates",
    "runtime_class_name", "priority_class_name", "ephemeral_containers", "scheduling_gates",
    "resource_claims", "host_network", "host_pid", "host_ipc", "share_process_namespace",
)
_IGNORED_CONTAINER_FIELDS = ("security_context", "lifecycle", "volume_devices", "resize_policy")
_IGNORED_VOLUME_SOURCES = ("persistent_volume_claim", "projected", "downward_api",
                           "nfs", "csi", "ephemeral", "image")


def _get(obj: object, dotted: str) -> object:
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _pod_spec_warnings(spec: PodSpec, prefix: str) -> list[str]:
    out = []
    for name in _IGNORED_POD_FIELDS:
        value = _get(spec, name)
        if value not in (None, {}, [], False):
            out.append(f"{prefix}.{_alias(name)}: accepted but not enforced by kubelite")
    for group, containers in (("initContainers", spec.init_containers or []), ("containers", spec.containers)):
        for i, c in enumerate(containers):
            for name in _IGNORED_CONTAINER_FIELDS:
                if getattr(c, name) not in (None, {}, []):
                    out.append(f"{prefix}.{group}[{i}].{_alias(name)}: accepted but not enforced by kubelite")
    for i, v in enumerate(spec.volumes or []):
        for name in _IGNORED_VOLUME_SOURCES:
            if getattr(v, name) is not None:
                out.append(f"{prefix}.volumes[{i}].{_alias(name)}: volume type not supported by kubelite; "
                           "only emptyDir, hostPath, configMap and secret are mounted")
    return out


def _alias(dotted: str) -> str:
    from pydantic.alias_generators import to_camel

    return ".".join(to_camel(p) for p in dotted.split("."))


def unsupported_field_warnings(obj: KubeModel) -> list[str]:
    if isinstance(obj, Pod):
        return _pod_spec_warnings(obj.spec, "spec")
    template = getattr(getattr(obj, "spec", None), "template", None)
    if isinstance(template, PodTemplateSpec):
        return _pod_spec_warnings(template.spec, "spec.template.spec")
    return []
