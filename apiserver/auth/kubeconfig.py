"""Kubeconfig files with everything embedded (CA, client certificate and key, or a token).

The file is a credential: written 0600 like every key (`files.write_private`). The format is
the one kubectl reads (`apiVersion: v1, kind: Config`), with `*-data` fields in base64 so the
file stands alone and can be copied to another machine.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from apiserver.auth.files import write_private


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig_text(*, server: str, ca_pem: bytes, user: str, cert_pem: bytes | None = None,
                    key_pem: bytes | None = None, token: str | None = None, cluster: str = "kubelite",
                    namespace: str | None = None) -> str:
    """A kubeconfig document (YAML) with one cluster, one user and one current context."""
    if (cert_pem is None) != (key_pem is None):
        raise ValueError("a client certificate needs its key, and a key its certificate")
    context = f"{user}@{cluster}"
    q = json.dumps  # a JSON string is a valid YAML scalar, quoted and escaped
    lines = [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        f"- name: {q(cluster)}",
        "  cluster:",
        f"    server: {q(server)}",
        f"    certificate-authority-data: {_b64(ca_pem)}",
        "users:",
        f"- name: {q(user)}",
        "  user:",
    ]
    if cert_pem is not None and key_pem is not None:
        lines += [f"    client-certificate-data: {_b64(cert_pem)}", f"    client-key-data: {_b64(key_pem)}"]
    if token is not None:
        lines.append(f"    token: {q(token)}")
    if cert_pem is None and token is None:
        raise ValueError("a kubeconfig user needs a client certificate or a token")
    lines += [
        "contexts:",
        f"- name: {q(context)}",
        "  context:",
        f"    cluster: {q(cluster)}",
        f"    user: {q(user)}",
    ]
    if namespace:
        lines.append(f"    namespace: {q(namespace)}")
    lines += [f"current-context: {q(context)}", "preferences: {}", ""]
    return "\n".join(lines)


def write_kubeconfig(path: Path, *, server: str, ca_pem: bytes, user: str, cert_pem: bytes | None = None,
                     key_pem: bytes | None = None, token: str | None = None, cluster: str = "kubelite",
                     namespace: str | None = None) -> Path:
    """Write a self-contained kubeconfig to `path` (0600) and return the path."""
    return write_private(path, kubeconfig_text(server=server, ca_pem=ca_pem, user=user, cert_pem=cert_pem,
                                               key_pem=key_pem, token=token, cluster=cluster,
                                               namespace=namespace))
