"""`create configmap` and `create secret generic|tls|docker-registry`: the object from the flags,
by kubectl's rules (pure apart from reading the named files).

    --from-literal KEY=VALUE    split at the first `=`
    --from-file [KEY=]PATH      a file under KEY (default: its base name); a directory: each regular
                                file in it whose name is a valid key (not recursive)
    --from-env-file PATH        `KEY=VALUE` lines; blank lines and `#` comments skipped; a line with
                                a bare KEY takes the value from this process's environment

A key given twice is an error, as in kubectl. ConfigMap values that are not UTF-8 go to
`binaryData`; Secret values are base64.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
DEFAULT_DOCKER_SERVER = "https://index.docker.io/v1/"


class ConfigDataError(ValueError):
    """The flags do not make a valid object (the message is kubectl's, prefixed `error: ` on output)."""


def _add(out: dict[str, bytes], key: str, value: bytes, kind: str, name: str) -> None:
    if not _KEY.match(key) or key in (".", "..") or key.startswith(".."):
        raise ConfigDataError(f"{key!r} is not a valid key name for a {kind}")
    if key in out:
        raise ConfigDataError(f'cannot add key "{key}", another key by that name already exists in Data for '
                              f'{kind} "{name}"')
    out[key] = value


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConfigDataError(f"error reading {path}: {e.strerror or e}") from e


def collect(*, literals: Sequence[str], files: Sequence[str], env_files: Sequence[str], kind: str,
            name: str) -> dict[str, bytes]:
    """The keys and values the three kinds of flags give, in order."""
    out: dict[str, bytes] = {}
    for literal in literals:
        key, sep, value = literal.partition("=")
        if not sep or not key:
            raise ConfigDataError(f'invalid literal source {literal}, expected key=value')
        _add(out, key, value.encode(), kind, name)
    for spec in files:
        key, sep, path_text = spec.partition("=")
        if not sep:
            key, path_text = "", spec
        path = Path(path_text)
        if path.is_dir():
            if key:
                raise ConfigDataError(f"cannot give a key name for a directory path: {spec}")
            for entry in sorted(path.iterdir()):
                if entry.is_file() and _KEY.match(entry.name) and not entry.name.startswith(".."):
                    _add(out, entry.name, _read(entry), kind, name)
            continue
        _add(out, key or path.name, _read(path), kind, name)
    for env_file in env_files:
        for number, line in enumerate(_read(Path(env_file)).decode(errors="replace").splitlines(), 1):
            text = line.lstrip()
            if not text or text.startswith("#"):
                continue
            key, sep, value = text.partition("=")
            if not sep:
                if key not in os.environ:
                    continue
                value = os.environ[key]
            if not re.match(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", key):
                raise ConfigDataError(f'"{key}" is not a valid key name (line {number} of {env_file})')
            _add(out, key, value.encode(), kind, name)
    return out


def configmap(name: str, values: dict[str, bytes]) -> dict[str, Any]:
    data, binary = {}, {}
    for key, value in values.items():
        try:
            data[key] = value.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(value).decode()
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    if data:
        obj["data"] = data
    if binary:
        obj["binaryData"] = binary
    return obj


def secret(name: str, values: dict[str, bytes], *, type_: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}
    if values:
        obj["data"] = {k: base64.b64encode(v).decode() for k, v in values.items()}
    if type_:
        obj["type"] = type_
    return obj


def tls_secret(name: str, *, cert: str, key: str) -> dict[str, Any]:
    """A kubernetes.io/tls Secret; both files must hold PEM data."""
    cert_data, key_data = _read(Path(cert)), _read(Path(key))
    if b"-----BEGIN" not in cert_data:
        raise ConfigDataError("tls: failed to find any PEM data in certificate input")
    if b"-----BEGIN" not in key_data:
        raise ConfigDataError("tls: failed to find any PEM data in key input")
    return secret(name, {"tls.crt": cert_data, "tls.key": key_data}, type_="kubernetes.io/tls")


def docker_registry_secret(name: str, *, server: str | None, username: str, password: str,
                           email: str | None = None) -> dict[str, Any]:
    """A kubernetes.io/dockerconfigjson Secret with one registry's credentials."""
    if not username or not password:
        raise ConfigDataError("username and password are required for a docker-registry secret")
    entry: dict[str, str] = {"username": username, "password": password}
    if email:
        entry["email"] = email
    entry["auth"] = base64.b64encode(f"{username}:{password}".encode()).decode()
    config = {"auths": {server or DEFAULT_DOCKER_SERVER: entry}}
    return secret(name, {".dockerconfigjson": json.dumps(config, separators=(",", ":")).encode()},
                  type_="kubernetes.io/dockerconfigjson")
