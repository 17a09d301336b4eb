"""A kubelet's serving certificate: its logs/exec server speaks TLS that the API server verifies.

    kubelet (node credential)                                   API server
      | POST /kubelite/v1/kubelet-serving-certificate  {csr, addresses}
      |      TLS client cert CN=system:node:NAME, O=system:nodes
      |  <- {certificate: CN=system:node:NAME, SANs NAME + addresses, serverAuth; caCert}
      | write kubelet-serving.crt/.key and kubelet-client-ca.crt (0600) under <root-dir>/pki
      | serve :10250 with it, requiring a client certificate from that CA   (pki.kubelet_server_ssl_context)
      |                                                               and the API server's CN (kubelet/server.py)
    API server --https, client cert CN=kube-apiserver-kubelet-client--> kubelet      (apiserver/proxy.py)

This plays the part of Kubernetes' `kubernetes.io/kubelet-serving` CSR signer, approved on the
spot: the node name comes from the caller's verified node identity, never from the request,
and only addresses go in beside it. As with the kubelet-serving signer, a node chooses its own
addresses (it also reports them in its Node status), so the API server trusts a node's address
claims as much as it trusts the node.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography import x509

from api import errors
from apiserver.auth import pki
from apiserver.auth.authn import USER
from apiserver.auth.authz import KUBELET_SERVING_PATH, node_name_of
from apiserver.auth.files import private_dir, write_private
from apiserver.handlers import json_response

log = logging.getLogger(__name__)

# The only client a kubelet's logs/exec server accepts (the API server's kubelet client).
KUBELET_CLIENT_USERS = frozenset({pki.APISERVER_KUBELET_CLIENT.user})


class ServingCertError(Exception):
    """The kubelet could not obtain its serving certificate; the message says why."""


# ------------------------------------------------------------------ server side


class KubeletServingService:
    def __init__(self, cluster_pki: pki.ClusterPKI) -> None:
        self.pki = cluster_pki

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(KUBELET_SERVING_PATH, self.issue)

    async def issue(self, request: web.Request) -> web.Response:
        user = request.get(USER)
        node = node_name_of(user) if user is not None else None
        if node is None:  # the authorizer lets only nodes through; this keeps the handler honest alone
            raise errors.Forbidden("only a node identity (system:node:NAME) may ask for a kubelet serving certificate")
        try:
            body = await request.json()
        except ValueError as err:
            raise errors.BadRequest("the request must be JSON: {csr, addresses}") from err
        csr = body.get("csr") if isinstance(body, dict) else None
        addresses = body.get("addresses") if isinstance(body, dict) else None
        if not isinstance(csr, str):
            raise errors.BadRequest("the request carries no csr")
        if not isinstance(addresses, list) or not addresses:
            raise errors.BadRequest("the request must list the node's addresses")
        bad = [a for a in addresses if not _is_ip(a)]
        if bad:
            raise errors.Invalid(f"addresses must be IP addresses: {', '.join(map(repr, bad))}")
        ca = self.pki.load_ca()
        try:
            cert = ca.sign_kubelet_serving(pki.csr_public_key(csr.encode()), node, ips=addresses)
        except pki.PKIError as err:
            raise errors.BadRequest(str(err)) from err
        log.info("issued a kubelet serving certificate to node %s for %s", node, ", ".join(addresses))
        return json_response({"kind": "KubeletServingCertificate", "apiVersion": "kubelite.io/v1",
                              "certificate": pki.cert_pem(cert).decode(), "caCert": ca.cert_pem.decode()},
                             status=201)


def _is_ip(value: object) -> bool:
    try:
        ipaddress.ip_address(value)  # type: ignore[arg-type]
    except ValueError:
        return False
    return isinstance(value, str)


# ------------------------------------------------------------------ kubelet side


@dataclass(frozen=True, slots=True)
class KubeletServing:
    """What a kubelet serves TLS with."""

    cert: pki.CertPaths
    client_ca: Path  # the cluster CA: client certificates must chain to it

    def ssl_context(self) -> ssl.SSLContext:
        return pki.kubelet_server_ssl_context(self.cert, self.client_ca)


def serving_paths(dest_dir: Path) -> KubeletServing:
    return KubeletServing(pki.CertPaths(dest_dir / "kubelet-serving.crt", dest_dir / "kubelet-serving.key"),
                          dest_dir / "kubelet-client-ca.crt")


def _reusable(paths: KubeletServing, node_name: str, ips: list[str]) -> bool:
    try:
        ca = x509.load_pem_x509_certificate(paths.client_ca.read_bytes())
        cert = x509.load_pem_x509_certificate(paths.cert.cert.read_bytes())
        key = pki.load_key(paths.cert.key.read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, pki.PKIError, x509.ExtensionNotFound):
        return False
    have_ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return (pki.issued_by(cert, ca) and cert.public_key() == key.public_key()
            and node_name in sans.get_values_for_type(x509.DNSName)
            and {str(ipaddress.ip_address(a)) for a in ips} <= have_ips
            and cert.not_valid_after_utc - pki._now() > pki.RENEW_BEFORE)


async def ensure_kubelet_serving(server: str, client_ssl: ssl.SSLContext, node_name: str, ips: Iterable[str],
                                 dest_dir: Path, *, timeout: float = 30) -> KubeletServing:
    """The kubelet's serving certificate under `dest_dir`: reused while valid for `ips`, else asked for.

    `client_ssl` is the node's credential (its client certificate and the cluster CA)."""
    ips = list(dict.fromkeys(ips))
    paths = serving_paths(dest_dir)
    if _reusable(paths, node_name, ips):
        return paths
    key = pki.load_key(paths.cert.key.read_bytes()) if paths.cert.key.exists() else pki.new_key()
    csr = pki.make_csr(key, pki.node_identity(node_name))
    url = server.rstrip("/") + KUBELET_SERVING_PATH
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
                session.post(url, json={"csr": csr.decode(), "addresses": ips}, ssl=client_ssl) as resp:
            reply: dict[str, Any] = await resp.json(content_type=None)
            if resp.status != 201:
                raise ServingCertError(f"the API server refused (HTTP {resp.status}): {reply.get('message')}")
    except (aiohttp.ClientError, ssl.SSLError, TimeoutError, ValueError) as err:
        raise ServingCertError(f"cannot reach {url}: {err}") from err
    try:
        cert = x509.load_pem_x509_certificate(str(reply.get("certificate") or "").encode())
        ca = x509.load_pem_x509_certificate(str(reply.get("caCert") or "").encode())
    except ValueError as err:
        raise ServingCertError(f"the API server returned an unreadable certificate: {err}") from err
    if not pki.issued_by(cert, ca) or cert.public_key() != key.public_key():
        raise ServingCertError("the API server returned a certificate that is not ours (wrong issuer or key)")
    private_dir(dest_dir)
    write_private(paths.client_ca, pki.cert_pem(ca))
    write_private(paths.cert.key, pki.key_pem(key))
    write_private(paths.cert.cert, pki.cert_pem(cert))
    return paths
