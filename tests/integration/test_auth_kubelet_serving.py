"""A node asks the API server for its kubelet's serving certificate: it gets one for its own
name and addresses only; nobody else gets one; bad requests change nothing."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from api import errors
from api.client import Client
from apiserver.auth.kubeletcert import KUBELET_SERVING_PATH, ServingCertError, ensure_kubelet_serving
from apiserver.auth.pki import ADMIN, client_ssl_context, identity_of, make_csr, new_key, node_identity
from tests.support.secure import SecureApiServer


def node_ssl(secure: SecureApiServer, name: str):  # type: ignore[no-untyped-def]
    return client_ssl_context(secure.pki.ca_cert, secure.credential(f"node-{name}", node_identity(name)))


async def test_a_node_gets_a_serving_certificate_for_its_own_name_and_addresses(secure: SecureApiServer,
                                                                                tmp_path: Path) -> None:
    dest = tmp_path / "pki"
    serving = await ensure_kubelet_serving(secure.url, node_ssl(secure, "worker-1"), "worker-1",
                                           ["198.51.100.11"], dest)
    for p in (serving.cert.cert, serving.cert.key, serving.client_ca):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert serving.client_ca.read_bytes() == secure.pki.ca_cert.read_bytes()
    cert = x509.load_pem_x509_certificate(serving.cert.cert.read_bytes())
    assert identity_of(cert) == node_identity("worker-1")
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    # exactly its name and address: no localhost, no `kubernetes`, nothing another host could use
    assert sans.get_values_for_type(x509.DNSName) == ["worker-1"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("198.51.100.11")]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    serving.ssl_context()  # loads: key and certificate belong together

    # a restart reuses it without asking; a new address gets a new certificate, same key
    before = serving.cert.cert.read_bytes()
    again = await ensure_kubelet_serving("https://127.0.0.1:1", node_ssl(secure, "worker-1"), "worker-1",
                                         ["198.51.100.11"], dest)
    assert again == serving and serving.cert.cert.read_bytes() == before
    moved = await ensure_kubelet_serving(secure.url, node_ssl(secure, "worker-1"), "worker-1", ["198.51.100.21"], dest)
    assert moved.cert.cert.read_bytes() != before
    assert moved.cert.key.read_bytes() == serving.cert.key.read_bytes()


async def test_the_name_comes_from_the_credential_not_the_request(secure: SecureApiServer, tmp_path: Path) -> None:
    # worker-2's credential asking "for worker-1" still gets a certificate naming worker-2
    serving = await ensure_kubelet_serving(secure.url, node_ssl(secure, "worker-2"), "worker-1", ["10.0.0.1"],
                                           tmp_path / "pki")
    cert = x509.load_pem_x509_certificate(serving.cert.cert.read_bytes())
    assert identity_of(cert) == node_identity("worker-2")


async def test_only_nodes_get_one_and_bad_requests_are_refused(secure: SecureApiServer, tmp_path: Path) -> None:
    csr = make_csr(new_key(), node_identity("worker-1")).decode()
    body = {"csr": csr, "addresses": ["10.0.0.1"]}
    async with Client(secure.url, ssl=client_ssl_context(secure.pki.ca_cert)) as anonymous:
        with pytest.raises(errors.Unauthorized):
            await anonymous.request("POST", KUBELET_SERVING_PATH, json=body)
    admin_ssl = client_ssl_context(secure.pki.ca_cert, secure.credential("admin-t", ADMIN))
    async with Client(secure.url, ssl=admin_ssl) as admin:
        with pytest.raises(errors.Forbidden):
            await admin.request("POST", KUBELET_SERVING_PATH, json=body)
    async with Client(secure.url, ssl=node_ssl(secure, "worker-1")) as node:
        with pytest.raises(errors.Invalid, match="not-an-ip"):
            await node.request("POST", KUBELET_SERVING_PATH, json={"csr": csr, "addresses": ["not-an-ip"]})
        with pytest.raises(errors.BadRequest):
            await node.request("POST", KUBELET_SERVING_PATH, json={"csr": "garbage", "addresses": ["10.0.0.1"]})
        # a node may not read other kubelets through the node proxy either
        with pytest.raises(errors.Forbidden):
            await node.request("GET", "/api/v1/nodes/worker-1/proxy/stats/summary")
    with pytest.raises(ServingCertError, match="403"):
        await ensure_kubelet_serving(secure.url, admin_ssl, "worker-1", ["10.0.0.1"], tmp_path / "admin-pki")
    assert not (tmp_path / "admin-pki" / "kubelet-serving.crt").exists()
