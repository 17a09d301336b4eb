"""The kubeadm-style join against a real https API server: token + pinned CA hash -> a node
credential that works; a wrong hash, a wrong token or a plain request gets nothing."""

from __future__ import annotations

import stat
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509

from api import errors
from api.client import Client
from apiserver.auth.join import CLUSTER_INFO_PATH, JOIN_PATH, JoinError, join
from apiserver.auth.pki import (
    ADMIN,
    CertificateAuthority,
    CertPaths,
    client_ssl_context,
    identity_of,
    make_csr,
    new_key,
    node_identity,
)
from apiserver.auth.tokens import ca_cert_hash, generate_join_token
from tests.support.secure import SecureApiServer


async def test_join_gives_a_working_node_credential(secure: SecureApiServer, tmp_path: Path) -> None:
    m = secure.material
    dest = tmp_path / "agent"
    paths = await join(secure.url, str(m.join_token), m.ca_cert_hash, "worker-1", dest)
    for p in (paths.ca_cert, paths.cert, paths.key, paths.kubeconfig):
        assert p.parent == dest and stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    cert = x509.load_pem_x509_certificate(paths.cert.read_bytes())
    assert identity_of(cert) == node_identity("worker-1")
    assert paths.ca_cert.read_bytes() == secure.pki.ca_cert.read_bytes()

    ctx = client_ssl_context(paths.ca_cert, CertPaths(paths.cert, paths.key))
    async with Client(secure.url, ssl=ctx) as node:
        await node.request("POST", "/api/v1/nodes", json={"metadata": {"name": "worker-1"}})
        with pytest.raises(errors.Forbidden):
            await node.request("POST", "/api/v1/nodes", json={"metadata": {"name": "worker-2"}})

    # the kubeconfig is what the CLI reads
    from cli.config import from_kubeconfig
    target = from_kubeconfig(paths.kubeconfig)
    assert target.server == secure.url and target.ssl is not None
    async with Client(target.server, ssl=target.ssl) as node:
        assert (await node.request("GET", "/api/v1/nodes/worker-1"))["metadata"]["name"] == "worker-1"

    # a re-run (agent restart, token long expired) reuses the credential without asking the server
    before = paths.cert.read_bytes()
    again = await join("https://127.0.0.1:1", "aaaaaa.bbbbbbbbbbbbbbbb", m.ca_cert_hash, "worker-1", dest)
    assert again == paths and paths.cert.read_bytes() == before


async def test_a_wrong_ca_hash_fails_clearly(secure: SecureApiServer, tmp_path: Path) -> None:
    wrong = ca_cert_hash(CertificateAuthority.create().cert)
    with pytest.raises(JoinError) as info:
        await join(secure.url, str(secure.material.join_token), wrong, "worker-1", tmp_path / "agent")
    message = str(info.value)
    assert "does not match the pinned --ca-cert-hash" in message
    assert wrong in message and secure.material.ca_cert_hash in message
    assert not (tmp_path / "agent").exists()


async def test_a_wrong_token_or_bad_input_fails(secure: SecureApiServer, tmp_path: Path) -> None:
    pin = secure.material.ca_cert_hash
    with pytest.raises(JoinError, match="not signed with join token"):
        await join(secure.url, str(generate_join_token()), pin, "worker-1", tmp_path / "a")
    token = secure.material.join_token
    with pytest.raises(JoinError, match="not signed with join token"):  # right id, wrong secret
        await join(secure.url, f"{token.id}.{'x' * 16}", pin, "worker-1", tmp_path / "a")
    with pytest.raises(JoinError, match="6 then 16"):
        await join(secure.url, "nope", pin, "worker-1", tmp_path / "a")
    with pytest.raises(JoinError, match="sha256:<64 hex digits>"):
        await join(secure.url, str(token), "sha256:abc", "worker-1", tmp_path / "a")
    with pytest.raises(JoinError, match="https"):
        await join(secure.url.replace("https", "http"), str(token), pin, "worker-1", tmp_path / "a")
    with pytest.raises(JoinError, match="invalid node name"):
        await join(secure.url, str(token), pin, "Worker_1", tmp_path / "a")
    assert not (tmp_path / "a").exists()


async def test_the_join_endpoint_checks_the_token_itself(secure: SecureApiServer) -> None:
    ctx = client_ssl_context(secure.pki.ca_cert)
    csr = make_csr(new_key(), ADMIN).decode()
    token = secure.material.join_token
    async with aiohttp.ClientSession() as session:
        async with session.get(secure.url + CLUSTER_INFO_PATH, ssl=ctx) as resp:
            info = await resp.json()
            assert resp.status == 200 and set(info["signatures"]) == {token.id}
            assert info["caCert"] == secure.pki.ca_cert.read_text()
        for headers in ({}, {"Authorization": "Bearer " + str(generate_join_token())},
                        {"Authorization": f"Bearer {token.id}.{'0' * 16}"}, {"Authorization": "Basic eDp5"}):
            async with session.post(secure.url + JOIN_PATH, json={"nodeName": "n", "csr": csr}, ssl=ctx,
                                    headers=headers) as resp:
                assert resp.status == 401 and (await resp.json())["reason"] == "Unauthorized"
        auth = {"Authorization": f"Bearer {token}"}
        async with session.post(secure.url + JOIN_PATH, json={"nodeName": "n", "csr": "junk"}, ssl=ctx,
                                headers=auth) as resp:
            assert resp.status == 400
        async with session.post(secure.url + JOIN_PATH, json={"nodeName": "../etc", "csr": csr}, ssl=ctx,
                                headers=auth) as resp:
            assert resp.status == 422
        async with session.post(secure.url + JOIN_PATH, json={"nodeName": "n", "csr": csr}, ssl=ctx,
                                headers=auth) as resp:
            reply = await resp.json()
            assert resp.status == 201
        # the CSR asked for system:masters; the certificate says what the token allows: a node
        cert = x509.load_pem_x509_certificate(reply["certificate"].encode())
        assert identity_of(cert) == node_identity("n")
