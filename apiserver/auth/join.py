"""Joining a node, kubeadm-style: a join token plus a pinned CA hash yield a node credential.

    agent                                                   API server
      | GET /kubelite/v1/cluster-info   (TLS, not yet verified: no CA yet)
      |  <- {server, caCert, signatures: {tokenID: HMAC-SHA256(secret, payload)}}
      | check the signature for our token id     -> the server knows our token
      | check sha256(SPKI of caCert) == the pin  -> it is the CA the operator meant
      | POST /kubelite/v1/join   (TLS verified by that CA; Authorization: Bearer TOKEN)
      |      {nodeName, csr}
      |  <- {certificate: CN=system:node:NAME, O=system:nodes; caCert}
      | write ca.crt, node.crt, node.key, kubelet.kubeconfig (0600) under dest_dir

Invariants:

* Nothing from the unverified first response is trusted until both checks pass: the HMAC
  shows the responder holds the join token's secret; the pin shows the CA is the one whose
  hash the operator copied from the control plane. A wrong pin is a hard error that names both
  hashes, never a warning.
* The node's private key is generated on the node and never sent; the server signs only the
  CSR's public key, and the identity in the certificate comes from the request's node name
  under a valid token, not from the CSR's subject.
* The join endpoint is served only over TLS, and answers 401 for a missing, unknown or
  expired token, without saying which tokens exist.
* Re-running `join` with a credential already in place for the same node and pinned CA reuses
  it (agents restart long after their token expired).

Anyone holding a valid join token may obtain a credential for any node name, as with kubeadm's
bootstrap tokens: keep tokens short-lived, and treat them as secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from cryptography import x509

from api import errors
from apiserver.auth import pki
from apiserver.auth.files import private_dir, write_private
from apiserver.auth.kubeconfig import write_kubeconfig
from apiserver.auth.tokens import (
    JoinToken,
    JoinTokenStore,
    TokenError,
    ca_cert_hash,
    ca_hash_matches,
    parse_ca_hash,
    parse_join_token,
)
from apiserver.handlers import json_response

log = logging.getLogger(__name__)

CLUSTER_INFO_PATH = "/kubelite/v1/cluster-info"
JOIN_PATH = "/kubelite/v1/join"
_NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class JoinError(Exception):
    """The join failed; the message says why and what to check."""


def valid_node_name(name: str) -> bool:
    return len(name) <= 253 and _NODE_NAME.match(name) is not None


def _payload(server: str, ca_pem: str) -> bytes:
    return json.dumps({"caCert": ca_pem, "server": server}, sort_keys=True, separators=(",", ":")).encode()


def sign_cluster_info(token: JoinToken, server: str, ca_pem: str) -> str:
    return hmac.new(token.secret.encode(), _payload(server, ca_pem), hashlib.sha256).hexdigest()


# ------------------------------------------------------------------ server side


@dataclass
class JoinService:
    """Serves the two bootstrap endpoints; `server` is the URL advertised in the cluster info."""

    pki: pki.ClusterPKI
    tokens: JoinTokenStore
    server: str

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(CLUSTER_INFO_PATH, self.cluster_info)
        app.router.add_post(JOIN_PATH, self.join)

    async def cluster_info(self, request: web.Request) -> web.Response:
        ca_pem = self.pki.ca_cert.read_text()
        signatures = {t.id: sign_cluster_info(t, self.server, ca_pem) for t in self.tokens.valid()}
        return json_response({"kind": "ClusterInfo", "apiVersion": "kubelite.io/v1", "server": self.server,
                              "caCert": ca_pem, "signatures": signatures})

    async def join(self, request: web.Request) -> web.Response:
        transport = request.transport
        if transport is None or transport.get_extra_info("ssl_object") is None:
            return _error(errors.BadRequest("joining is served over https only"))
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise TokenError("no join token")
            token = self.tokens.authenticate(presented.strip())
        except TokenError as err:
            log.warning("join refused from %s: %s", request.remote, err)
            return _error(errors.Unauthorized(f"Unauthorized: {err}"))
        try:
            body = await request.json()
        except ValueError:
            return _error(errors.BadRequest("the join request must be JSON: {nodeName, csr}"))
        node = body.get("nodeName") if isinstance(body, dict) else None
        csr = body.get("csr") if isinstance(body, dict) else None
        if not isinstance(node, str) or not valid_node_name(node):
            return _error(errors.Invalid(f"invalid node name {node!r}: it must be a DNS subdomain "
                                         "(lower-case letters, digits, '-' and '.')"))
        if not isinstance(csr, str):
            return _error(errors.BadRequest("the join request carries no csr"))
        ca = self.pki.load_ca()
        try:
            cert = pki.sign_csr(ca, csr.encode(), pki.node_identity(node))
        except pki.PKIError as err:
            return _error(errors.BadRequest(str(err)))
        log.info("node %s joined with token %s from %s", node, token.id, request.remote)
        return json_response({"kind": "JoinResponse", "apiVersion": "kubelite.io/v1", "nodeName": node,
                              "certificate": pki.cert_pem(cert).decode(), "caCert": ca.cert_pem.decode()},
                             status=201)


def _error(err: errors.ApiError) -> web.Response:
    return json_response(err.to_status().to_dict(), status=err.code)


# ------------------------------------------------------------------ client side


@dataclass(frozen=True, slots=True)
class JoinedPaths:
    ca_cert: Path
    cert: Path
    key: Path
    kubeconfig: Path


def joined_paths(dest_dir: Path) -> JoinedPaths:
    return JoinedPaths(dest_dir / "ca.crt", dest_dir / "node.crt", dest_dir / "node.key",
                       dest_dir / "kubelet.kubeconfig")


def _reusable(paths: JoinedPaths, pin: str, node_name: str) -> bool:
    try:
        ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        cert = x509.load_pem_x509_certificate(paths.cert.read_bytes())
        key = pki.load_key(paths.key.read_bytes())
    except (OSError, ValueError, pki.PKIError):
        return False
    return (ca_hash_matches(ca, pin) and pki.issued_by(cert, ca) and paths.kubeconfig.exists()
            and cert.public_key() == key.public_key()
            and pki.identity_of(cert) == pki.node_identity(node_name)
            and cert.not_valid_after_utc - pki._now() > pki.RENEW_BEFORE)


async def fetch_cluster_info(server: str, token: JoinToken, pin: str, *, timeout: float = 30) -> bytes:
    """The cluster CA (PEM), once the token's signature and the pin both check out."""
    url = server.rstrip("/") + CLUSTER_INFO_PATH
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
                session.get(url, ssl=False) as resp:  # no CA yet: what we get is checked below
            if resp.status != 200:
                raise JoinError(f"{url} answered HTTP {resp.status}: {(await resp.text())[:200]}")
            info: dict[str, Any] = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        raise JoinError(f"cannot fetch the cluster info from {url}: {err}") from err
    ca_pem, advertised = info.get("caCert"), info.get("server")
    signature = (info.get("signatures") or {}).get(token.id)
    if not isinstance(ca_pem, str) or not isinstance(advertised, str):
        raise JoinError(f"{url} did not return a kubelite cluster info (no caCert/server)")
    if not isinstance(signature, str) or not hmac.compare_digest(
            signature, sign_cluster_info(token, advertised, ca_pem)):
        raise JoinError(f"the cluster info at {server} is not signed with join token {token.id}: the token is "
                        "wrong or expired, or this is not the cluster that issued it")
    try:
        ca = x509.load_pem_x509_certificate(ca_pem.encode())
    except ValueError as err:
        raise JoinError(f"the cluster info carries an unreadable CA certificate: {err}") from err
    if not ca_hash_matches(ca, pin):
        raise JoinError(f"the cluster CA's public key hash {ca_cert_hash(ca)} does not match the pinned "
                        f"--ca-cert-hash {pin}: refusing to trust {server}. Check the hash printed by the "
                        "control plane (a different cluster, or a man in the middle, would cause this)")
    return ca_pem.encode()


async def join(server: str, token: str, ca_cert_hash: str, node_name: str, dest_dir: Path, *,
               timeout: float = 30) -> JoinedPaths:
    """Join the cluster at `server` (https://HOST:PORT) as `node_name`; returns the credential's paths."""
    if urlsplit(server).scheme != "https":
        raise JoinError(f"--server must be an https:// URL, got {server!r}")
    try:
        parsed = parse_join_token(token)
        pin = parse_ca_hash(ca_cert_hash)
    except TokenError as err:
        raise JoinError(str(err)) from err
    if not valid_node_name(node_name):
        raise JoinError(f"invalid node name {node_name!r}: it must be a DNS subdomain (lower-case letters, "
                        "digits, '-' and '.')")
    paths = joined_paths(dest_dir)
    if _reusable(paths, pin, node_name):
        return paths
    ca_pem = await fetch_cluster_info(server, parsed, pin, timeout=timeout)
    key = pki.new_key()
    csr = pki.make_csr(key, pki.node_identity(node_name))
    ctx = pki.client_ssl_context(ca_pem)
    url = server.rstrip("/") + JOIN_PATH
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
                session.post(url, json={"nodeName": node_name, "csr": csr.decode()}, ssl=ctx,
                             headers={"Authorization": f"Bearer {parsed}"}) as resp:
            reply: dict[str, Any] = await resp.json(content_type=None)
            if resp.status != 201:
                raise JoinError(f"the API server refused the join (HTTP {resp.status}): {reply.get('message')}")
    except (aiohttp.ClientError, ssl.SSLError, TimeoutError, ValueError) as err:
        raise JoinError(f"cannot join through {url}: {err}") from err
    cert_pem = str(reply.get("certificate") or "").encode()
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as err:
        raise JoinError(f"the API server returned an unreadable certificate: {err}") from err
    if (not pki.issued_by(cert, x509.load_pem_x509_certificate(ca_pem)) or cert.public_key() != key.public_key()
            or pki.identity_of(cert) != pki.node_identity(node_name)):
        raise JoinError("the API server returned a certificate that is not ours (wrong issuer, key or identity)")
    private_dir(dest_dir)
    write_private(paths.ca_cert, ca_pem)
    write_private(paths.key, pki.key_pem(key))
    write_private(paths.cert, cert_pem)
    write_kubeconfig(paths.kubeconfig, server=server, ca_pem=ca_pem, user=pki.node_identity(node_name).user,
                     cert_pem=cert_pem, key_pem=pki.key_pem(key))
    return paths
