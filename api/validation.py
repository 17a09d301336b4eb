"""Validation: every bad field of an object, at once, as Kubernetes reports them.

Two passes, both collecting rather than stopping at the first problem:

1. `parse_object` builds the typed model; pydantic reports every type error and
   missing required field in one go, converted here to Kubernetes' cause format
   (`spec.containers[0].name: Required value`).
2. `validate` checks what types cannot say: DNS-1123 names, label syntax, quantities,
   port ranges, enums, a Deployment's selector matching its template labels, unique
   container names, ...

Messages follow Kubernetes' field errors so that a user who knows one knows the other.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from api.apps import Deployment, ReplicaSet
from api.base import KubeModel
from api.coordination import Lease
from api.core import Container, EnvVarSource, Event, Namespace, Node, Pod, PodSpec, PodTemplateSpec
from api.errors import Invalid
from api.meta import LabelSelector, ObjectMeta, StatusCause
from api.quantity import QuantityError
from api.quantity import parse_quantity as _parse_quantity
from api.selectors import SelectorError, label_key_errors, label_selector_from_dict, label_value_errors

# Quantities repeat across objects ("100m", "64Mi"); parsing is pure and Fractions are immutable.
parse_quantity = functools.lru_cache(maxsize=4096)(_parse_quantity)

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")

LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
             "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
             "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                 "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
                 "regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")

RESTART_POLICIES = ("Always", "OnFailure", "Never")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("TCP", "UDP", "SCTP")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage", "pods")


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value) if not isinstance(
        value, dict | list) else json.dumps(value, separators=(",", ":"))


class Errors:
    """Accumulates field errors in Kubernetes' cause format."""

    def __init__(self) -> None:
        self.causes: list[StatusCause] = []

    def required(self, field: str, detail: str = "") -> None:
        msg = "Required value" + (f": {detail}" if detail else "")
        self.causes.append(StatusCause(reason="FieldValueRequired", message=msg, field=field))

    def invalid(self, field: str, value: Any, detail: str) -> None:
        self.causes.append(StatusCause(reason="FieldValueInvalid",
                                       message=f"Invalid value: {_show(value)}: {detail}", field=field))

    def not_supported(self, field: str, value: Any, supported: Iterable[str]) -> None:
        opts = ", ".join(f'"{s}"' for s in supported)
        self.causes.append(StatusCause(reason="FieldValueNotSupported",
                                       message=f"Unsupported value: {_show(value)}: supported values: {opts}",
                                       field=field))

    def duplicate(self, field: str, value: Any) -> None:
        self.causes.append(StatusCause(reason="FieldValueDuplicate",
                                       message=f"Duplicate value: {_show(value)}", field=field))

    def forbidden(self, field: str, detail: str) -> None:
        self.causes.append(StatusCause(reason="FieldValueForbidden", message=f"Forbidden: {detail}",
                                       field=field))

    def unknown(self, field: str) -> None:
        self.causes.append(StatusCause(reason="FieldValueUnknown",
                                       message=f'unknown field "{field}"', field=field))

    def __bool__(self) -> bool:
        return bool(self.causes)


def invalid_error(kind: str, group: str, name: str | None, causes: list[StatusCause]) -> Invalid:
    """`Pod "web" is invalid: [spec.containers[0].image: Required value, ...]`."""
    qualified = f"{kind}.{group}" if group else kind
    parts = [f"{c.field}: {c.message}" if c.field else (c.message or "") for c in causes]
    listed = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return Invalid(f'{qualified} "{name or ""}" is invalid: {listed}', name=name, group=group, kind=kind,
                   causes=causes)


# ------------------------------------------------------------------ pass 1: types


def _loc_to_field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def causes_from_pydantic(err: ValidationError) -> list[StatusCause]:
    errors = Errors()
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if p not in ("function-after", "function-before"))
        # Unions report one error per branch (`int`, `str`); keep the first per field.
        loc = tuple(p for p in loc if p not in ("int", "str", "bool"))
        field = _loc_to_field(loc)
        if any(c.field == field for c in errors.causes):
            continue
        if e["type"] == "missing":
            errors.required(field)
        elif e["type"] == "literal_error":
            expected = e.get("ctx", {}).get("expected", "")
            errors.not_supported(field, e.get("input"), [s.strip(" '") for s in str(expected).split(" or ")])
        else:
            errors.invalid(field, e.get("input"), str(e["msg"]).lower())
    return errors.causes


def parse_object(model: type[KubeModel], data: Any) -> KubeModel:
    """The typed object, or Invalid listing every type error."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        name = data.get("metadata", {}).get("name") if isinstance(data, dict) else None
        group = model.model_fields["api_version"].default.rpartition("/")[0] \
            if "api_version" in model.model_fields else ""
        raise invalid_error(model.__name__, group, name, causes_from_pydantic(err)) from err


# ------------------------------------------------------------------ pass 2: semantics


def check_dns_label(errors: Errors, field: str, value: str) -> None:
    if len(value) > 63:
        errors.invalid(field, value, "must be no more than 63 characters")
    if not _DNS1123_LABEL.match(value):
        errors.invalid(field, value, LABEL_MSG)


def check_dns_subdomain(errors: Errors, field: str, value: str) -> None:
    if len(value) > 253:
        errors.invalid(field, value, "must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.match(value):
        errors.invalid(field, value, SUBDOMAIN_MSG)


def check_labels(errors: Errors, field: str, labels: dict[str, str] | None) -> None:
    for key, value in (labels or {}).items():
        for detail in label_key_errors(key):
            errors.invalid(field, key, detail)
        for detail in label_value_errors(value):
            errors.invalid(f"{field}[{key}]", value, detail)


def check_metadata(errors: Errors, meta: ObjectMeta, *, namespaced: bool, name_is_label: bool = False,
                   field: str = "metadata") -> None:
    if meta.name:
        (check_dns_label if name_is_label else check_dns_subdomain)(errors, f"{field}.name", meta.name)
    elif meta.generate_name:
        check_dns_subdomain(errors, f"{field}.generateName", meta.generate_name.rstrip("-") or "a")
    else:
        errors.required(f"{field}.name", "name or generateName is required")
    if namespaced and meta.namespace:
        check_dns_label(errors, f"{field}.namespace", meta.namespace)
    check_labels(errors, f"{field}.labels", meta.labels)
    total = sum(len(k) + len(v) for k, v in (meta.annotations or {}).items())
    if total > 256 * 1024:
        errors.invalid(f"{field}.annotations", "", "must have at most 262144 bytes")
    for i, ref in enumerate(meta.owner_references or []):
        if not ref.uid:
            errors.required(f"{field}.ownerReferences[{i}].uid")


def check_quantities(errors: Errors, field: str, values: dict[str, str] | None) -> None:
    for key, value in (values or {}).items():
        try:
            q = parse_quantity(value)
        except QuantityError as err:
            errors.invalid(f"{field}[{key}]", value, str(err))
            continue
        if q < 0:
            errors.invalid(f"{field}[{key}]", value, "must be greater than or equal to 0")


def _check_port(errors: Errors, field: str, port: int | str, *, allow_zero: bool = False) -> None:
    if isinstance(port, str):
        if not _IANA_SVC_NAME.match(port) or len(port) > 15:
            errors.invalid(field, port, "must contain only alpha-numeric characters (a-z, 0-9), and hyphens")
    elif not ((allow_zero and port == 0) or 1 <= port <= 65535):
        errors.invalid(field, port, "must be between 1 and 65535, inclusive")


# The downward API fields an env var may name (Kubernetes' validEnvDownwardAPIFieldPathExpressions),
# besides metadata.labels['key'] and metadata.annotations['key'].
ENV_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                   "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs")
ENV_RESOURCES = ("limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
                 "requests.ephemeral-storage", "requests.memory")
CPU_DIVISORS = ("1m", "1")
MEMORY_DIVISORS = ("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei")
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


def check_env_source(errors: Errors, field: str, src: EnvVarSource, *, has_value: bool) -> None:
    """One of fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef, each well formed."""
    chosen = [k for k in ("field_ref", "resource_field_ref", "config_map_key_ref", "secret_key_ref")
              if getattr(src, k) is not None]
    if has_value:
        errors.invalid(field, "", "may not be specified when `value` is not empty")
    if not chosen:
        errors.invalid(field, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` "
                                  "or `secretKeyRef`")
        return
    if len(chosen) > 1:
        errors.invalid(field, "", "may not have more than one field specified at a time")
        return
    if src.field_ref is not None:
        path = src.field_ref.field_path
        version = src.field_ref.api_version or "v1"
        if version != "v1":
            errors.not_supported(f"{field}.fieldRef.apiVersion", version, ["v1"])
        if not path:
            errors.required(f"{field}.fieldRef.fieldPath")
        elif path not in ENV_FIELD_PATHS and not _SUBSCRIPT.match(path):
            errors.not_supported(f"{field}.fieldRef.fieldPath", path, sorted(ENV_FIELD_PATHS))
    if src.resource_field_ref is not None:
        ref = src.resource_field_ref
        if not ref.resource:
            errors.required(f"{field}.resourceFieldRef.resource")
        elif ref.resource not in ENV_RESOURCES:
            errors.not_supported(f"{field}.resourceFieldRef.resource", ref.resource, ENV_RESOURCES)
        elif ref.divisor is not None:
            allowed = CPU_DIVISORS if ref.resource.endswith(".cpu") else MEMORY_DIVISORS
            try:
                ok = any(parse_quantity(ref.divisor) == parse_quantity(d) for d in allowed)
            except QuantityError:
                ok = False
            if not ok:
                errors.not_supported(f"{field}.resourceFieldRef.divisor", ref.divisor, allowed)
    for key, name in (("config_map_key_ref", "configMapKeyRef"), ("secret_key_ref", "secretKeyRef")):
        ref = getattr(src, key)
        if ref is not None and not ref.key:
            errors.required(f"{field}.{name}.key")


def check_container(errors: Errors, field: str, c: Container, volumes: set[str]) -> None:
    check_dns_label(errors, f"{field}.name", c.name)
    if not c.image:
        errors.required(f"{field}.image")
    if c.image_pull_policy is not None and c.image_pull_policy not in PULL_POLICIES:
        errors.not_supported(f"{field}.imagePullPolicy", c.image_pull_policy, PULL_POLICIES)
    seen_ports: set[tuple[int, str]] = set()
    for i, p in enumerate(c.ports or []):
        pf = f"{field}.ports[{i}]"
        _check_port(errors, f"{pf}.containerPort", p.container_port)
        if p.host_port is not None:
            _check_port(errors, f"{pf}.hostPort", p.host_port, allow_zero=True)
        proto = p.protocol or "TCP"
        if proto not in PROTOCOLS:
            errors.not_supported(f"{pf}.protocol", proto, PROTOCOLS)
        if (p.container_port, proto) in seen_ports:
            errors.duplicate(f"{pf}", f"{p.container_port}/{proto}")
        seen_ports.add((p.container_port, proto))
    env_names: set[str] = set()
    for i, e in enumerate(c.env or []):
        if not e.name:
            errors.required(f"{field}.env[{i}].name")
        env_names.add(e.name)
        if e.value_from is not None:
            check_env_source(errors, f"{field}.env[{i}].valueFrom", e.value_from, has_value=bool(e.value))
    if c.resources:
        check_quantities(errors, f"{field}.resources.limits", c.resources.limits)
        check_quantities(errors, f"{field}.resources.requests", c.resources.requests)
        for key, req in (c.resources.requests or {}).items():
            limit = (c.resources.limits or {}).get(key)
            try:
                if limit is not None and parse_quantity(req) > parse_quantity(limit):
                    errors.invalid(f"{field}.resources.requests", req,
                                   f"must be less than or equal to {key} limit of {limit}")
            except QuantityError:
                pass  # already reported
    mounts: set[str] = set()
    for i, m in enumerate(c.volume_mounts or []):
        if m.name not in volumes:
            errors.not_supported(f"{field}.volumeMounts[{i}].name", m.name, sorted(volumes))
        if not m.mount_path.startswith("/"):
            errors.invalid(f"{field}.volumeMounts[{i}].mountPath", m.mount_path, "must be an absolute path")
        if m.mount_path in mounts:
            errors.invalid(f"{field}.volumeMounts[{i}].mountPath", m.mount_path, "must be unique")
        mounts.add(m.mount_path)
    for probe_name in ("liveness_probe", "readiness_probe", "startup_probe"):
        probe = getattr(c, probe_name)
        if probe is None:
            continue
        pf = f"{field}.{type(c).model_fields[probe_name].alias}"
        handlers = [h for h in (probe.exec, probe.http_get, probe.tcp_socket, probe.grpc) if h is not None]
        if len(handlers) != 1:
            errors.required(pf, "must specify exactly one handler type")
        if probe.http_get is not None:
            _check_port(errors, f"{pf}.httpGet.port", probe.http_get.port)
        if probe.tcp_socket is not None:
            _check_port(errors, f"{pf}.tcpSocket.port", probe.tcp_socket.port)
        for attr in ("initial_delay_seconds", "timeout_seconds", "period_seconds", "success_threshold",
                     "failure_threshold"):
            v = getattr(probe, attr)
            if v is not None and v < 0:
                errors.invalid(f"{pf}.{type(probe).model_fields[attr].alias}", v,
                               "must be greater than or equal to 0")


def check_pod_spec(errors: Errors, field: str, spec: PodSpec) -> None:
    volumes: set[str] = set()
    for i, v in enumerate(spec.volumes or []):
        check_dns_label(errors, f"{field}.volumes[{i}].name", v.name)
        if v.name in volumes:
            errors.duplicate(f"{field}.volumes[{i}].name", v.name)
        volumes.add(v.name)
        sources = [n for n in Volume_sources if getattr(v, n) is not None]
        if len(sources) > 1:
            errors.forbidden(f"{field}.volumes[{i}]", "may not specify more than 1 volume type")
        if v.host_path is not None and not v.host_path.path.startswith("/"):
            errors.invalid(f"{field}.volumes[{i}].hostPath.path", v.host_path.path, "must be an absolute path")
    if not spec.containers:
        errors.required(f"{field}.containers")
    names: set[str] = set()
    for group, containers in (("initContainers", spec.init_containers or []), ("containers", spec.containers)):
        for i, c in enumerate(containers):
            if c.name in names:
                errors.duplicate(f"{field}.{group}[{i}].name", c.name)
            names.add(c.name)
            check_container(errors, f"{field}.{group}[{i}]", c, volumes)
    if spec.restart_policy is not None and spec.restart_policy not in RESTART_POLICIES:
        errors.not_supported(f"{field}.restartPolicy", spec.restart_policy, RESTART_POLICIES)
    if spec.termination_grace_period_seconds is not None and spec.termination_grace_period_seconds < 0:
        errors.invalid(f"{field}.terminationGracePeriodSeconds", spec.termination_grace_period_seconds,
                       "must be greater than or equal to 0")
    check_labels(errors, f"{field}.nodeSelector", spec.node_selector)
    for i, t in enumerate(spec.tolerations or []):
        if t.effect and t.effect not in TAINT_EFFECTS:
            errors.not_supported(f"{field}.tolerations[{i}].effect", t.effect, TAINT_EFFECTS)
        if t.operator not in (None, "Exists", "Equal"):
            errors.not_supported(f"{field}.tolerations[{i}].operator", t.operator, ("Equal", "Exists"))
        if t.operator == "Exists" and t.value:
            errors.invalid(f"{field}.tolerations[{i}].operator", t.value,
                           "value must be empty when `operator` is 'Exists'")
    if spec.node_name:
        check_dns_subdomain(errors, f"{field}.nodeName", spec.node_name)
    check_pod_dns(errors, field, spec)
    from api.validation_config import check_pod_config_sources  # it builds on this module's helpers

    check_pod_config_sources(errors, field, spec)


DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")


def check_pod_dns(errors: Errors, field: str, spec: PodSpec) -> None:
    """dnsPolicy, dnsConfig (None needs a nameserver; at most 3 nameservers, 32 searches of 2048
    characters in all), hostname and subdomain as Kubernetes checks them."""
    if spec.hostname:
        check_dns_label(errors, f"{field}.hostname", spec.hostname)
    if spec.subdomain:
        check_dns_label(errors, f"{field}.subdomain", spec.subdomain)
    policy, cfg = spec.dns_policy, spec.dns_config
    if policy is not None and policy not in DNS_POLICIES:
        errors.not_supported(f"{field}.dnsPolicy", policy, DNS_POLICIES)
    if policy == "None" and cfg is None:
        errors.required(f"{field}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None")
    if cfg is None:
        return
    servers, searches = cfg.nameservers or [], cfg.searches or []
    if policy == "None" and not servers:
        errors.required(f"{field}.dnsConfig.nameservers",
                        "must provide at least one DNS nameserver when `dnsPolicy` is None")
    if len(servers) > 3:
        errors.invalid(f"{field}.dnsConfig.nameservers", servers, "must not have more than 3 nameservers")
    for i, server in enumerate(servers):
        try:
            ipaddress.ip_address(server)
        except ValueError:
            errors.invalid(f"{field}.dnsConfig.nameservers[{i}]", server, "must be a valid IP address")
    if len(searches) > 32:
        errors.invalid(f"{field}.dnsConfig.searches", searches, "must not have more than 32 search paths")
    if len(" ".join(searches)) > 2048:
        errors.invalid(f"{field}.dnsConfig.searches", searches,
                       "must not have more than 2048 characters (including spaces) in the search list")
    for i, domain in enumerate(searches):
        if domain != ".":
            check_dns_subdomain(errors, f"{field}.dnsConfig.searches[{i}]", domain.removesuffix("."))
    for i, opt in enumerate(cfg.options or []):
        if not opt.name:
            errors.required(f"{field}.dnsConfig.options[{i}].name")


Volume_sources = ("empty_dir", "host_path", "config_map", "secret", "persistent_volume_claim",
                  "projected", "downward_api", "nfs", "csi", "ephemeral", "image")


def check_selector(errors: Errors, field: str, selector: LabelSelector | None, *, required: bool) -> None:
    if selector is None:
        if required:
            errors.required(field)
        return
    if required and not selector.match_labels and not selector.match_expressions:
        errors.invalid(field, {}, "empty selector is invalid for deployment")
        return
    try:
        label_selector_from_dict(selector.to_dict())
    except SelectorError as err:
        errors.invalid(field, selector.to_dict(), str(err))


def check_template(errors: Errors, field: str, template: PodTemplateSpec | None,
                   selector: LabelSelector | None) -> None:
    if template is None:
        errors.required(field)
        return
    labels = (template.metadata.labels if template.metadata else None) or {}
    check_labels(errors, f"{field}.metadata.labels", labels)
    if selector is not None and (selector.match_labels or selector.match_expressions):
        try:
            if not label_selector_from_dict(selector.to_dict()).matches(labels):
                errors.invalid(f"{field}.metadata.labels", labels, "`selector` does not match template `labels`")
        except SelectorError:
            pass  # reported by check_selector
    check_pod_spec(errors, f"{field}.spec", template.spec)
    if template.spec.restart_policy not in (None, "Always"):
        errors.not_supported(f"{field}.spec.restartPolicy", template.spec.restart_policy, ("Always",))


def _non_negative(errors: Errors, field: str, value: int | None) -> None:
    if value is not None and value < 0:
        errors.invalid(field, value, "must be greater than or equal to 0")


def _int_or_percent(errors: Errors, field: str, value: int | str | None) -> None:
    if isinstance(value, str) and not re.fullmatch(r"[0-9]+%", value):
        errors.invalid(field, value, "a valid percent string must be a numeric string followed by an ending '%'")
    elif isinstance(value, int) and value < 0:
        errors.invalid(field, value, "must be greater than or equal to 0")


def validate(obj: KubeModel) -> list[StatusCause]:
    """Semantic checks of a typed object; returns every problem found."""
    errors = Errors()
    if isinstance(obj, Namespace):
        check_metadata(errors, obj.metadata, namespaced=False, name_is_label=True)
    elif isinstance(obj, Pod):
        check_metadata(errors, obj.metadata, namespaced=True)
        check_pod_spec(errors, "spec", obj.spec)
    elif isinstance(obj, Deployment | ReplicaSet):
        check_metadata(errors, obj.metadata, namespaced=True)
        spec = obj.spec
        _non_negative(errors, "spec.replicas", spec.replicas)
        _non_negative(errors, "spec.minReadySeconds", spec.min_ready_seconds)
        check_selector(errors, "spec.selector", spec.selector, required=True)
        check_template(errors, "spec.template", spec.template, spec.selector)
        if isinstance(obj, Deployment):
            ds = obj.spec
            _non_negative(errors, "spec.revisionHistoryLimit", ds.revision_history_limit)
            strategy = ds.strategy
            if strategy is not None:
                if strategy.type not in (None, "RollingUpdate", "Recreate"):
                    errors.not_supported("spec.strategy.type", strategy.type, ("Recreate", "RollingUpdate"))
                ru = strategy.rolling_update
                if strategy.type == "Recreate" and ru is not None:
                    errors.forbidden("spec.strategy.rollingUpdate",
                                     "may not be specified when strategy `type` is 'Recreate'")
                if ru is not None:
                    _int_or_percent(errors, "spec.strategy.rollingUpdate.maxSurge", ru.max_surge)
                    _int_or_percent(errors, "spec.strategy.rollingUpdate.maxUnavailable", ru.max_unavailable)
                    if ru.max_surge in (0, "0%") and ru.max_unavailable in (0, "0%"):
                        errors.invalid("spec.strategy.rollingUpdate.maxUnavailable", ru.max_unavailable,
                                       "may not be 0 when `maxSurge` is 0")
            pds = ds.progress_deadline_seconds
            if pds is not None and pds <= (ds.min_ready_seconds or 0):
                errors.invalid("spec.progressDeadlineSeconds", pds,
                               "must be greater than minReadySeconds")
    elif isinstance(obj, Node):
        check_metadata(errors, obj.metadata, namespaced=False)
        for i, t in enumerate((obj.spec.taints if obj.spec else None) or []):
            if t.effect not in TAINT_EFFECTS:
                errors.not_supported(f"spec.taints[{i}].effect", t.effect, TAINT_EFFECTS)
            for detail in label_key_errors(t.key):
                errors.invalid(f"spec.taints[{i}].key", t.key, detail)
        if obj.status:
            check_quantities(errors, "status.capacity", obj.status.capacity)
            check_quantities(errors, "status.allocatable", obj.status.allocatable)
    elif isinstance(obj, Event):
        check_metadata(errors, obj.metadata, namespaced=True)
    elif isinstance(obj, Lease):
        check_metadata(errors, obj.metadata, namespaced=True)
    else:
        from api import validation_services as services  # it builds on this module's helpers

        if isinstance(obj, services.Service):
            services.check_service(errors, obj)
        elif isinstance(obj, services.Endpoints):
            services.check_endpoints(errors, obj)
        elif isinstance(obj, services.EndpointSlice):
            services.check_endpoint_slice(errors, obj)
        from api import validation_config as config

        if isinstance(obj, config.ConfigMap):
            config.check_configmap(errors, obj)
        elif isinstance(obj, config.Secret):
            config.check_secret(errors, obj)
    return errors.causes
