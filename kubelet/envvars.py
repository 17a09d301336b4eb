"""A container's environment, as Kubernetes builds it (pure): the image's ENV, then the
Services' Docker-link variables (`kubelet.servicelinks`), then the container's `env` in
order, each value `$(VAR)`-expanded against what came before.

`valueFrom` is resolved here:

* `fieldRef` (the downward API): metadata.name, .namespace, .uid, metadata.labels['k'],
  metadata.annotations['k'] (empty when absent, as in Kubernetes), spec.nodeName,
  spec.serviceAccountName, status.podIP(s), status.hostIP(s) (plural: comma-separated).
* `resourceFieldRef`: limits/requests of cpu, memory, ephemeral-storage of this container (or
  `containerName`), divided by `divisor` (default 1) and rounded up, as Kubernetes does
  (`limits.cpu` of 500m is "1", or "500" with divisor 1m). A limit that is not set is the
  node's allocatable amount; a request that is not set is the limit if there is one, else 0.
* `configMapKeyRef` / `secretKeyRef`: the key's value (a Secret's decoded), not expanded. A
  missing object or key fails the container's creation (`EnvError`, which the pod shows as
  CreateContainerConfigError) with the kubelet's words: 'configmap "X" not found',
  "couldn't find key K in ConfigMap NS/X"; with `optional: true` the variable is left out.

`envFrom` (before `env`, which wins): every key of the ConfigMap or Secret, named `prefix` +
key; a name that is not a valid env var name (Kubernetes' relaxed rule: printable ASCII but
`=`) is skipped and reported (the kubelet's InvalidEnvironmentVariableNames event, through
`skipped`). ConfigMap and Secret keys always pass it; only objects written around the API
server's validation can fail it. The objects come from `lookup`
((kind, name) -> object or None when it does not exist), so this module stays pure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

from api.config import ConfigMap, Secret, configmap_payload, secret_payload
from api.core import Container, Pod, ResourceFieldSelector
from api.quantity import QuantityError, parse_quantity

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


class EnvError(Exception):
    """The container's environment cannot be built (Kubernetes' CreateContainerConfigError)."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion in command, args and env values; unknown names stay as
    written, `$$` is a literal `$`."""
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text.replace("$$", "\x00")).replace("\x00", "$")


def field_value(pod: Pod, path: str, *, pod_ip: str | None, host_ip: str | None) -> str:
    m, spec = pod.metadata, pod.spec
    sub = _SUBSCRIPT.match(path)
    if sub:
        items = (m.labels if sub.group(1) == "labels" else m.annotations) or {}
        return items.get(sub.group(2), "")
    values = {
        "metadata.name": m.name, "metadata.namespace": m.namespace or "default", "metadata.uid": m.uid,
        "spec.nodeName": spec.node_name, "spec.serviceAccountName": spec.service_account_name,
        "status.podIP": pod_ip, "status.podIPs": pod_ip, "status.hostIP": host_ip, "status.hostIPs": host_ip,
    }
    if path not in values:
        raise EnvError(f"unsupported fieldPath: {path}")
    return values[path] or ""


def resource_value(pod: Pod, c: Container, ref: ResourceFieldSelector, allocatable: Mapping[str, str]) -> str:
    target = c
    if ref.container_name and ref.container_name != c.name:
        found = [x for x in [*pod.spec.containers, *(pod.spec.init_containers or [])] if x.name == ref.container_name]
        if not found:
            raise EnvError(f"container {ref.container_name} not found in pod {pod.metadata.name}")
        target = found[0]
    kind, _, resource = ref.resource.partition(".")
    limits = (target.resources.limits if target.resources else None) or {}
    requests = (target.resources.requests if target.resources else None) or {}
    if kind == "limits":
        amount = limits.get(resource, allocatable.get(resource))
    elif kind == "requests":
        amount = requests.get(resource, limits.get(resource, "0"))
    else:
        raise EnvError(f"unsupported container resource: {ref.resource}")
    if amount is None:
        raise EnvError(f"unsupported container resource: {ref.resource}")
    try:
        value, divisor = parse_quantity(amount), parse_quantity(ref.divisor or "1")
    except QuantityError as e:
        raise EnvError(f"resourceFieldRef {ref.resource}: {e}") from e
    if divisor <= 0:
        raise EnvError(f"resourceFieldRef {ref.resource}: divisor must be positive")
    return str(math.ceil(value / divisor))


Lookup = Callable[[str, str], ConfigMap | Secret | None]  # ("configmap" | "secret", name) -> object
_ENV_NAME = re.compile(r"^[ -<>-~]+$")  # printable ASCII but `=` (Kubernetes' relaxed names, v1.34)


def _values(kind: str, name: str, lookup: Lookup | None, *, optional: bool) -> dict[str, str] | None:
    """The keys of a ConfigMap or Secret as strings; None if it is missing and optional."""
    obj = lookup(kind, name) if lookup is not None else None
    if obj is None:
        if optional:
            return None
        raise EnvError(f'{kind} "{name}" not found')
    try:
        raw = configmap_payload(obj) if isinstance(obj, ConfigMap) else secret_payload(obj)
    except ValueError as e:
        raise EnvError(f'{kind} "{name}": {e}') from e
    return {k: v.decode(errors="replace") for k, v in raw.items()}


def _key_value(kind: str, ref: object, pod: Pod, lookup: Lookup | None) -> str | None:
    name, key, optional = getattr(ref, "name", "") or "", getattr(ref, "key", ""), bool(getattr(ref, "optional", False))
    values = _values(kind, name, lookup, optional=optional)
    if values is None:
        return None
    if key not in values:
        if optional:
            return None
        title = "ConfigMap" if kind == "configmap" else "Secret"
        raise EnvError(f"couldn't find key {key} in {title} {pod.metadata.namespace or 'default'}/{name}")
    return values[key]


def container_env(pod: Pod, c: Container, image_env: Mapping[str, str], *, pod_ip: str | None,
                  host_ip: str | None, allocatable: Mapping[str, str],
                  service_env: Mapping[str, str] | None = None, lookup: Lookup | None = None,
                  skipped: list[str] | None = None) -> dict[str, str]:
    """The image's ENV, then the Services' variables (`kubelet.servicelinks`), then `envFrom`,
    then the container's `env`: a later layer wins, and `$(VAR)` may name anything of an
    earlier one. Messages for envFrom keys skipped as invalid names are appended to `skipped`."""
    env = dict(image_env)
    env.update(service_env or {})
    ns = pod.metadata.namespace or "default"
    for source in c.env_from or []:
        for kind, ref in (("configmap", source.config_map_ref), ("secret", source.secret_ref)):
            if ref is None:
                continue
            values = _values(kind, ref.name or "", lookup, optional=bool(ref.optional))
            invalid = []
            for key, value in (values or {}).items():
                name = (source.prefix or "") + key
                if _ENV_NAME.match(name):
                    env[name] = value
                else:
                    invalid.append(name)
            if invalid and skipped is not None:
                what = "configMap" if kind == "configmap" else "secret"
                skipped.append(f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom {what} {ns}/{ref.name} were "
                               "skipped since they are considered invalid environment variable names.")
    for var in c.env or []:
        src = var.value_from
        if src is None:
            env[var.name] = expand(var.value or "", env)
        elif src.field_ref is not None:
            env[var.name] = field_value(pod, src.field_ref.field_path, pod_ip=pod_ip, host_ip=host_ip)
        elif src.resource_field_ref is not None:
            env[var.name] = resource_value(pod, c, src.resource_field_ref, allocatable)
        elif src.config_map_key_ref is not None:
            if (found := _key_value("configmap", src.config_map_key_ref, pod, lookup)) is not None:
                env[var.name] = found
        elif src.secret_key_ref is not None:
            if (found := _key_value("secret", src.secret_key_ref, pod, lookup)) is not None:
                env[var.name] = found
    return env
