"""Semantic checks of ConfigMaps and Secrets, of the pod fields that refer to them, and of
their updates (`immutable`), as Kubernetes' ValidateConfigMap / ValidateSecret do.

Every problem is collected, as for the other kinds. A Secret's `stringData` has already
been folded into `data` (`api.config.fold_string_data`, called by the defaults), so a bad
stringData key is reported under `data[key]`, as Kubernetes reports it.

Deviation: a Secret value that is not base64 is a 422 here naming `data[key]` (every bad
key at once); Kubernetes refuses it earlier, while decoding the body, with a 400.
"""

from __future__ import annotations

import json
import re
from typing import Any

from api.config import (
    BASIC_AUTH,
    BASIC_AUTH_PASSWORD_KEY,
    BASIC_AUTH_USERNAME_KEY,
    DOCKER_CONFIG,
    DOCKER_CONFIG_JSON,
    DOCKER_CONFIG_JSON_KEY,
    DOCKER_CONFIG_KEY,
    MAX_SIZE,
    SERVICE_ACCOUNT_NAME_ANNOTATION,
    SERVICE_ACCOUNT_TOKEN,
    SSH_AUTH,
    SSH_AUTH_PRIVATE_KEY,
    TLS,
    TLS_CERT_KEY,
    TLS_KEY_KEY,
    ConfigMap,
    KeyToPath,
    Secret,
    decode_value,
)
from api.core import Container, PodSpec
from api.meta import StatusCause
from api.validation import Errors, check_dns_subdomain, check_metadata

_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                  "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
# Kubernetes' relaxed env var names (KEP-4369, stable since v1.34): printable ASCII but `=`.
_ENV_NAME = re.compile(r"^[ -<>-~]+$")
ENV_NAME_MSG = "a valid environment variable name must consist only of printable ASCII characters other than '='"
REDACTED = "<secret contents redacted>"
IMMUTABLE_MSG = "field is immutable when `immutable` is set"
TOO_LONG = f"Too long: must have at most {MAX_SIZE} bytes"
MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"


def config_key_errors(key: str) -> list[str]:
    """Kubernetes' IsConfigMapKey: what is wrong with a ConfigMap or Secret key (empty if nothing)."""
    out = []
    if len(key) > 253:
        out.append("must be no more than 253 characters")
    if not _CONFIG_KEY.match(key):
        out.append(CONFIG_KEY_MSG)
    if key == ".":
        out.append("must not be '.'")
    elif key == "..":
        out.append("must not be '..'")
    elif key.startswith(".."):
        out.append("must not start with '..'")
    return out


def env_name_ok(name: str) -> bool:
    """Kubernetes' IsRelaxedEnvVarName (what envFrom names must be, or they are skipped)."""
    return bool(_ENV_NAME.match(name))


def _too_long(errors: Errors, field: str) -> None:
    errors.causes.append(StatusCause(reason="FieldValueTooLong", message=TOO_LONG, field=field))


def check_configmap(errors: Errors, cm: ConfigMap) -> None:
    check_metadata(errors, cm.metadata, namespaced=True)
    total = 0
    binary = cm.binary_data or {}
    for key, value in (cm.data or {}).items():
        for msg in config_key_errors(key):
            errors.invalid(f"data[{key}]", key, msg)
        if key in binary:
            errors.invalid(f"data[{key}]", key, "duplicate of key present in binaryData")
        total += len(value.encode())
    for key, value in binary.items():
        for msg in config_key_errors(key):
            errors.invalid(f"binaryData[{key}]", key, msg)
        try:
            total += len(decode_value(value))
        except ValueError as err:
            errors.invalid(f"binaryData[{key}]", "", str(err))
    if total > MAX_SIZE:
        _too_long(errors, "[]")  # Kubernetes' path for "the whole object"


def check_secret(errors: Errors, secret: Secret) -> None:
    check_metadata(errors, secret.metadata, namespaced=True)
    data: dict[str, bytes] = {}
    total = 0
    for key, value in (secret.data or {}).items():
        for msg in config_key_errors(key):
            errors.invalid(f"data[{key}]", key, msg)
        try:
            data[key] = decode_value(value)
        except ValueError as err:
            errors.invalid(f"data[{key}]", REDACTED, str(err))
            continue
        total += len(data[key])
    if total > MAX_SIZE:
        _too_long(errors, "data")
    kind = secret.type or ""
    if kind == SERVICE_ACCOUNT_TOKEN:
        if not (secret.metadata.annotations or {}).get(SERVICE_ACCOUNT_NAME_ANNOTATION):
            errors.required(f"metadata.annotations[{SERVICE_ACCOUNT_NAME_ANNOTATION}]")
    elif kind in (DOCKER_CONFIG, DOCKER_CONFIG_JSON):
        wanted = DOCKER_CONFIG_JSON_KEY if kind == DOCKER_CONFIG_JSON else DOCKER_CONFIG_KEY
        if wanted not in (secret.data or {}):
            errors.required(f"data[{wanted}]")
        elif wanted in data:
            try:
                parsed = json.loads(data[wanted])
            except ValueError as err:
                errors.invalid(f"data[{wanted}]", REDACTED, str(err))
            else:
                if not isinstance(parsed, dict):
                    errors.invalid(f"data[{wanted}]", REDACTED, "must be a JSON object")
    elif kind == BASIC_AUTH:
        if BASIC_AUTH_USERNAME_KEY not in (secret.data or {}) and BASIC_AUTH_PASSWORD_KEY not in (secret.data or {}):
            errors.required(f"data[{BASIC_AUTH_USERNAME_KEY}]")
            errors.required(f"data[{BASIC_AUTH_PASSWORD_KEY}]")
    elif kind == SSH_AUTH:
        if not data.get(SSH_AUTH_PRIVATE_KEY):
            errors.required(f"data[{SSH_AUTH_PRIVATE_KEY}]")
    elif kind == TLS:
        for key in (TLS_CERT_KEY, TLS_KEY_KEY):
            if key not in (secret.data or {}):
                errors.required(f"data[{key}]")


def check_config_update(old: dict[str, Any], new: dict[str, Any]) -> list[StatusCause]:
    """What an update may not change: a Secret's `type` ever; once `immutable` is true, the
    data (and binaryData), and `immutable` itself. Wire forms (stringData already folded)."""
    errors = Errors()
    if new.get("kind") == "Secret" and new.get("type") != old.get("type"):
        errors.invalid("type", new.get("type"), "field is immutable")
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errors.forbidden("immutable", IMMUTABLE_MSG)
        fields = ("data",) if new.get("kind") == "Secret" else ("data", "binaryData")
        for name in fields:
            if (old.get(name) or {}) != (new.get(name) or {}):
                errors.forbidden(name, IMMUTABLE_MSG)
    return errors.causes


# ---------------------------------------------------------------- pod fields


def _check_items(errors: Errors, field: str, items: list[KeyToPath] | None) -> None:
    for i, item in enumerate(items or []):
        f = f"{field}.items[{i}]"
        if not item.key:
            errors.required(f"{f}.key")
        check_volume_path(errors, f"{f}.path", item.path)
        if item.mode is not None and not 0 <= item.mode <= 0o777:
            errors.invalid(f"{f}.mode", item.mode, MODE_MSG)


def check_volume_path(errors: Errors, field: str, path: str) -> None:
    """A file path inside a volume: relative, without `..` elements (Kubernetes' validateLocalDescendingPath)."""
    if not path:
        errors.required(field)
        return
    if path.startswith("/"):
        errors.invalid(field, path, "must be a relative path")
    if ".." in path.split("/"):
        errors.invalid(field, path, "must not contain '..'")
    elif path.startswith(".."):
        errors.invalid(field, path, "must not start with '..'")


def check_pod_config_sources(errors: Errors, field: str, spec: PodSpec) -> None:
    """configMap/secret volumes, envFrom and the key refs of every container."""
    for i, v in enumerate(spec.volumes or []):
        vf = f"{field}.volumes[{i}]"
        if v.config_map is not None:
            if not v.config_map.name:
                errors.required(f"{vf}.configMap.name")
            else:
                check_dns_subdomain(errors, f"{vf}.configMap.name", v.config_map.name)
            _check_mode(errors, f"{vf}.configMap.defaultMode", v.config_map.default_mode)
            _check_items(errors, f"{vf}.configMap", v.config_map.items)
        if v.secret is not None:
            if not v.secret.secret_name:
                errors.required(f"{vf}.secret.secretName")
            else:
                check_dns_subdomain(errors, f"{vf}.secret.secretName", v.secret.secret_name)
            _check_mode(errors, f"{vf}.secret.defaultMode", v.secret.default_mode)
            _check_items(errors, f"{vf}.secret", v.secret.items)
    for group, containers in (("initContainers", spec.init_containers or []), ("containers", spec.containers)):
        for i, c in enumerate(containers):
            _check_container(errors, f"{field}.{group}[{i}]", c)


def _check_mode(errors: Errors, field: str, mode: int | None) -> None:
    if mode is not None and not 0 <= mode <= 0o777:
        errors.invalid(field, mode, MODE_MSG)


def _check_container(errors: Errors, field: str, c: Container) -> None:
    for i, source in enumerate(c.env_from or []):
        f = f"{field}.envFrom[{i}]"
        refs = [r for r in (source.config_map_ref, source.secret_ref) if r is not None]
        if not refs:
            errors.invalid(f, "", "must specify one of: `configMapRef` or `secretRef`")
        elif len(refs) > 1:
            errors.invalid(f, "", "may not have more than one field specified at a time")
        if source.prefix and not env_name_ok(source.prefix):
            errors.invalid(f"{f}.prefix", source.prefix, ENV_NAME_MSG)
        if source.config_map_ref is not None and not source.config_map_ref.name:
            errors.required(f"{f}.configMapRef.name")
        if source.secret_ref is not None and not source.secret_ref.name:
            errors.required(f"{f}.secretRef.name")
    for i, var in enumerate(c.env or []):
        src = var.value_from
        if src is None:
            continue
        f = f"{field}.env[{i}].valueFrom"
        if src.config_map_key_ref is not None and not src.config_map_key_ref.name:
            errors.required(f"{f}.configMapKeyRef.name")
        if src.secret_key_ref is not None and not src.secret_key_ref.name:
            errors.required(f"{f}.secretKeyRef.name")
        for ref, name in ((src.config_map_key_ref, "configMapKeyRef"), (src.secret_key_ref, "secretKeyRef")):
            if ref is not None and ref.key:
                for msg in config_key_errors(ref.key):
                    errors.invalid(f"{f}.{name}.key", ref.key, msg)
