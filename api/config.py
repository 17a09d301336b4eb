"""Configuration kinds (core/v1): ConfigMap and Secret, and the pod fields that use them
(env `configMapKeyRef`/`secretKeyRef`, `envFrom`, `configMap`/`secret` volumes).

Wire forms, as in Kubernetes:

* `ConfigMap.data` holds UTF-8 strings, `binaryData` base64 (bytes on the Go side); a key may
  be in one of them only.
* `Secret.data` holds base64; `stringData` is a write-only convenience: `fold_string_data`
  encodes it into `data` (a stringData key wins over the same data key) before validation,
  so it is never stored nor returned.
* The size of either kind is the sum of its values' decoded bytes, at most `MAX_SIZE` (1 MiB).

`immutable: true` freezes `data`, `binaryData` (and a Secret's `type`, which never changes
anyway) and cannot be unset: see `api.validation_config.check_config_update`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from api.base import KubeModel
from api.meta import ListMeta, ObjectMeta

MAX_SIZE = 1 << 20  # Kubernetes' MaxSecretSize, used for ConfigMaps too

OPAQUE = "Opaque"
SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"
DOCKER_CONFIG = "kubernetes.io/dockercfg"
DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
BASIC_AUTH = "kubernetes.io/basic-auth"
SSH_AUTH = "kubernetes.io/ssh-auth"
TLS = "kubernetes.io/tls"
BOOTSTRAP_TOKEN = "bootstrap.kubernetes.io/token"

DOCKER_CONFIG_KEY = ".dockercfg"
DOCKER_CONFIG_JSON_KEY = ".dockerconfigjson"
TLS_CERT_KEY, TLS_KEY_KEY = "tls.crt", "tls.key"
BASIC_AUTH_USERNAME_KEY, BASIC_AUTH_PASSWORD_KEY = "username", "password"
SSH_AUTH_PRIVATE_KEY = "ssh-privatekey"
SERVICE_ACCOUNT_NAME_ANNOTATION = "kubernetes.io/service-account.name"

_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")

# A volume file's mode when neither `defaultMode` nor the item's `mode` is given (0644).
DEFAULT_MODE = 0o644


# ---------------------------------------------------------------- the kinds


class ConfigMap(KubeModel):
    """Configuration for pods, as key/value pairs: read into env vars or mounted as files."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["ConfigMap"] = "ConfigMap"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    data: dict[str, str] | None = None
    binary_data: dict[str, str] | None = None  # base64
    immutable: bool | None = None


class ConfigMapList(KubeModel):
    api_version: Literal["v1"] = "v1"
    kind: Literal["ConfigMapList"] = "ConfigMapList"
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[ConfigMap] = Field(default_factory=list)


class Secret(KubeModel):
    """Credentials for pods (passwords, tokens, keys): like a ConfigMap, base64 values, kept
    on nodes in memory only (tmpfs)."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["Secret"] = "Secret"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    data: dict[str, str] | None = None  # base64
    string_data: dict[str, str] | None = None  # write-only: folded into data
    type: str | None = None
    immutable: bool | None = None


class SecretList(KubeModel):
    api_version: Literal["v1"] = "v1"
    kind: Literal["SecretList"] = "SecretList"
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Secret] = Field(default_factory=list)


def fold_string_data(secret: Secret) -> None:
    """Move `stringData` into `data` (base64), a stringData key replacing a data key, as
    Kubernetes' conversion does on every write."""
    if secret.string_data is None:
        return
    data = dict(secret.data or {})
    for key, value in secret.string_data.items():
        data[key] = base64.b64encode(value.encode()).decode()
    secret.data = data
    secret.string_data = None


def decode_value(text: str) -> bytes:
    """A base64 value as Go's encoding/json reads []byte (standard alphabet, padded);
    ValueError naming the first bad byte otherwise."""
    try:
        return base64.b64decode(text.encode(), validate=True)
    except ValueError as err:  # binascii.Error is a ValueError
        at = next((i for i, ch in enumerate(text) if ch not in _BASE64), len(text))
        raise ValueError(f"illegal base64 data at input byte {at}") from err


def configmap_payload(cm: ConfigMap) -> dict[str, bytes]:
    """Every key of a ConfigMap with its bytes (`data` as UTF-8, `binaryData` decoded)."""
    out = {k: v.encode() for k, v in (cm.data or {}).items()}
    out.update({k: decode_value(v) for k, v in (cm.binary_data or {}).items()})
    return out


def secret_payload(secret: Secret) -> dict[str, bytes]:
    """Every key of a Secret with its decoded bytes."""
    return {k: decode_value(v) for k, v in (secret.data or {}).items()}


# ---------------------------------------------------------------- what pods use


def spec_config_refs(spec: Mapping[str, Any]) -> set[tuple[str, str]]:
    """`("configmap" | "secret", name)` of every ConfigMap and Secret a pod spec (wire form) names:
    volumes, env `valueFrom`, `envFrom` of every container, `imagePullSecrets`. The kubelet
    watches these; the API server lets a node read only these (the Node authorizer's graph)."""
    refs: set[tuple[str, str]] = set()

    def add(kind: str, name: Any) -> None:
        if isinstance(name, str) and name:
            refs.add((kind, name))

    for v in spec.get("volumes") or []:
        add("configmap", (v.get("configMap") or {}).get("name"))
        add("secret", (v.get("secret") or {}).get("secretName"))
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for source in c.get("envFrom") or []:
            add("configmap", (source.get("configMapRef") or {}).get("name"))
            add("secret", (source.get("secretRef") or {}).get("name"))
        for var in c.get("env") or []:
            value_from = var.get("valueFrom") or {}
            add("configmap", (value_from.get("configMapKeyRef") or {}).get("name"))
            add("secret", (value_from.get("secretKeyRef") or {}).get("name"))
    for ref in spec.get("imagePullSecrets") or []:
        add("secret", ref.get("name"))
    return refs


class ConfigMapKeySelector(KubeModel):
    """env `valueFrom.configMapKeyRef`: one key of a ConfigMap in the pod's namespace."""

    name: str | None = None
    key: str = ""
    optional: bool | None = None


class SecretKeySelector(KubeModel):
    """env `valueFrom.secretKeyRef`: one key of a Secret in the pod's namespace."""

    name: str | None = None
    key: str = ""
    optional: bool | None = None


class ConfigMapEnvSource(KubeModel):
    name: str | None = None
    optional: bool | None = None


class SecretEnvSource(KubeModel):
    name: str | None = None
    optional: bool | None = None


class EnvFromSource(KubeModel):
    """`envFrom`: every key of a ConfigMap or Secret as an env var, named `prefix` + key."""

    prefix: str | None = None
    config_map_ref: ConfigMapEnvSource | None = None
    secret_ref: SecretEnvSource | None = None


class KeyToPath(KubeModel):
    """A volume item: the file `path` (relative) holding `key`, with `mode` (octal bits)."""

    key: str = ""
    path: str = ""
    mode: int | None = None


class ConfigMapVolumeSource(KubeModel):
    """A volume of a ConfigMap's keys as files (all of them, or `items`)."""

    name: str | None = None
    items: list[KeyToPath] | None = None
    default_mode: int | None = None
    optional: bool | None = None


class SecretVolumeSource(KubeModel):
    """A volume of a Secret's keys as files, on a tmpfs (`secretName`, not `name`)."""

    secret_name: str | None = None
    items: list[KeyToPath] | None = None
    default_mode: int | None = None
    optional: bool | None = None
