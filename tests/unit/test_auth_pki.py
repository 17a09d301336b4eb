"""The cluster PKI: identities in certificates, SANs, purposes, 0600 files, idempotent re-runs."""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from apiserver.auth.config import ensure_security
from apiserver.auth.kubeconfig import kubeconfig_text
from apiserver.auth.pki import (
    ADMIN,
    CONTROLLER_MANAGER,
    SCHEDULER,
    CertificateAuthority,
    ClusterPKI,
    Identity,
    PKIError,
    identity_of,
    make_csr,
    new_key,
    node_identity,
    sign_csr,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_identities_follow_kubernetes_conventions() -> None:
    ca = CertificateAuthority.create()
    for identity in (ADMIN, SCHEDULER, CONTROLLER_MANAGER, node_identity("n1"), Identity("bob", ("a", "b"))):
        cert = ca.sign_client(new_key().public_key(), identity)
        assert identity_of(cert) == identity
        assert ca.issued(cert)
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert ADMIN.groups == ("system:masters",)
    assert node_identity("n1") == Identity("system:node:n1", ("system:nodes",))
    assert SCHEDULER.user == "system:kube-scheduler"
    assert CONTROLLER_MANAGER.user == "system:kube-controller-manager"
    assert not CertificateAuthority.create().issued(ca.sign_client(new_key().public_key(), ADMIN))


def test_security_material_is_private_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "server"
    first = ensure_security(data, advertise_url="https://10.1.2.3:6443", ips=["10.1.2.3"], dns_names=["cp"])
    files = [p for p in data.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "admin.crt",
                                       "admin.key", "scheduler.crt", "controller-manager.key",
                                       "apiserver-kubelet-client.crt", "admin.kubeconfig", "join-tokens.json"}
    for p in files:
        assert mode(p) == 0o600, p
    for d in (data, data / "pki"):
        assert mode(d) == 0o700, d
    before = {p: p.read_bytes() for p in files}
    second = ensure_security(data, advertise_url="https://10.1.2.3:6443", ips=["10.1.2.3"], dns_names=["cp"])
    assert second.ca_cert_hash == first.ca_cert_hash and second.join_token == first.join_token
    for p, content in before.items():
        if p.suffix != ".kubeconfig":
            assert p.read_bytes() == content, f"{p} changed on a re-run"
    assert "kubelite agent --server https://10.1.2.3:6443 --token " in second.join_command()
    assert (data / "join-command").read_text() == second.join_command() + "\n"
    assert f"--ca-cert-hash {second.ca_cert_hash}" in second.join_command()


def test_files_stay_private_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        ensure_security(tmp_path / "s", advertise_url="https://127.0.0.1:6443")
    finally:
        os.umask(old)
    assert all(mode(p) == 0o600 for p in (tmp_path / "s").rglob("*") if p.is_file())


def test_server_certificate_sans_and_reissue_on_new_address(tmp_path: Path) -> None:
    pki = ClusterPKI(tmp_path)
    ca = pki.ensure_ca()
    pki.ensure_server_cert(ca, ips=["10.1.2.3"], dns_names=["cp.example"])
    cert = load(pki.server.cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "kubernetes", "cp.example"} <= set(sans.get_values_for_type(x509.DNSName))
    assert {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("10.1.2.3")} <= set(
        sans.get_values_for_type(x509.IPAddress))
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    key_before = pki.server.key.read_bytes()
    pki.ensure_server_cert(ca, ips=["10.1.2.3"])
    assert load(pki.server.cert) == cert  # covered: reused
    pki.ensure_server_cert(ca, ips=["10.9.9.9"])
    reissued = load(pki.server.cert)
    ips = set(reissued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
              .get_values_for_type(x509.IPAddress))
    assert {ipaddress.ip_address("10.9.9.9"), ipaddress.ip_address("10.1.2.3")} <= ips  # old names kept
    assert pki.server.key.read_bytes() == key_before


def test_a_half_present_ca_is_an_error_not_a_new_ca(tmp_path: Path) -> None:
    pki = ClusterPKI(tmp_path)
    pki.ensure_ca()
    pki.ca_key.unlink()
    with pytest.raises(PKIError, match="incomplete"):
        pki.ensure_ca()
    assert pki.ca_cert.exists()


def test_a_client_cert_from_another_ca_is_replaced(tmp_path: Path) -> None:
    pki = ClusterPKI(tmp_path)
    ca = pki.ensure_ca()
    paths = pki.ensure_client_cert(ca, "admin", ADMIN)
    other = CertificateAuthority.create()
    from apiserver.auth.pki import cert_pem, load_key
    paths.cert.write_bytes(cert_pem(other.sign_client(load_key(paths.key.read_bytes()).public_key(), ADMIN)))
    pki.ensure_client_cert(ca, "admin", ADMIN)
    assert ca.issued(load(paths.cert))


def test_csr_subject_is_ignored_identity_comes_from_the_caller() -> None:
    ca = CertificateAuthority.create()
    csr = make_csr(new_key(), ADMIN)  # asks to be an admin
    cert = sign_csr(ca, csr, node_identity("n1"))
    assert identity_of(cert) == node_identity("n1")
    with pytest.raises(PKIError):
        sign_csr(ca, b"not a csr", node_identity("n1"))


def test_kubeconfig_is_valid_yaml_with_embedded_material() -> None:
    text = kubeconfig_text(server="https://127.0.0.1:6443", ca_pem=b"CA", user="kubernetes-admin",
                           cert_pem=b"CERT", key_pem=b"KEY")
    doc = yaml.safe_load(text)
    assert doc["current-context"] == "kubernetes-admin@kubelite"
    assert doc["clusters"][0]["cluster"] == {"server": "https://127.0.0.1:6443",
                                             "certificate-authority-data": "Q0E="}
    assert doc["users"][0]["user"] == {"client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ"}
    with pytest.raises(ValueError):
        kubeconfig_text(server="https://x", ca_pem=b"CA", user="u")
