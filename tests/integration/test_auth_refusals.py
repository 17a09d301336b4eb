"""Over https with authentication and authorization on: unauthenticated requests get 401 and
authenticated but unauthorized ones 403, as Kubernetes Status objects, for every verb on every
resource and subresource; TLS refuses certificates from another CA or for another purpose."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from api.resources import ALL, Resource
from apiserver.auth.pki import ADMIN, CertificateAuthority, Identity, cert_pem, key_pem, new_key, node_identity
from tests.support.secure import SecureApiServer


def requests() -> list[tuple[str, str, dict[str, str], str, str]]:
    """(method, path, query, verb, resource[/sub]) for every verb on every resource and subresource."""
    out: list[tuple[str, str, dict[str, str], str, str]] = []
    for r in ALL:
        ns = "default" if r.namespaced else None
        coll, item = r.path(ns), r.path(ns, "x")
        out += [("GET", coll, {}, "list", r.plural), ("GET", coll, {"watch": "true"}, "watch", r.plural),
                ("POST", coll, {}, "create", r.plural), ("DELETE", coll, {}, "deletecollection", r.plural),
                ("GET", item, {}, "get", r.plural), ("PUT", item, {}, "update", r.plural),
                ("PATCH", item, {}, "patch", r.plural), ("DELETE", item, {}, "delete", r.plural)]
        if r.namespaced:
            out.append(("GET", r.path(None), {}, "list", r.plural))  # all namespaces
        for sub in r.subresources:
            path = r.path(ns, "x", sub)
            if sub in ("binding", "eviction", "exec"):
                out.append(("POST", path, {}, "create", f"{r.plural}/{sub}"))
            elif sub == "finalize":
                out.append(("PUT", path, {}, "update", f"{r.plural}/{sub}"))
            elif sub == "log":
                out.append(("GET", path, {}, "get", f"{r.plural}/{sub}"))
            else:
                out += [("GET", path, {}, "get", f"{r.plural}/{sub}"), ("PUT", path, {}, "update", f"{r.plural}/{sub}"),
                        ("PATCH", path, {}, "patch", f"{r.plural}/{sub}")]
    out.append(("GET", "/api/v1/namespaces/default/widgets", {}, "list", "widgets"))  # unknown: 403, not 404
    return out


REQUESTS = requests()


async def call(session: aiohttp.ClientSession, server: SecureApiServer, method: str, path: str,
               query: dict[str, str], *, ctx: ssl.SSLContext, headers: dict[str, str] | None = None
               ) -> tuple[int, dict[str, Any]]:
    body = {"metadata": {"name": "x"}} if method in ("POST", "PUT", "PATCH") else None
    hdrs = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
    async with session.request(method, server.url + path, params=query, json=body, ssl=ctx,
                               headers={**hdrs, **(headers or {})}) as resp:
        return resp.status, await resp.json(content_type=None)


def resource_of(rq: tuple[str, str, dict[str, str], str, str]) -> Resource | None:
    return next((r for r in ALL if r.plural == rq[4].split("/")[0]), None)


async def test_anonymous_and_bad_credentials_get_401_everywhere(secure: SecureApiServer) -> None:
    anonymous = secure.ssl_for(None)
    async with aiohttp.ClientSession() as session:
        for method, path, query, _, _ in REQUESTS:
            for headers in (None, {"Authorization": "Bearer not-a-valid-token-at-all"},
                            {"Authorization": "Basic YWRtaW46YWRtaW4="}):
                code, status = await call(session, secure, method, path, query, ctx=anonymous, headers=headers)
                assert code == 401, (method, path, headers, status)
                assert status == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
        for path in ("/api", "/apis", "/api/v1", "/openapi/v3", "/metrics"):
            code, _ = await call(session, secure, "GET", path, {}, ctx=anonymous)
            assert code == 401, path
        for path in ("/healthz", "/readyz", "/livez", "/version"):
            async with session.get(secure.url + path, ssl=anonymous) as resp:
                assert resp.status == 200, path
            code, _ = await call(session, secure, "GET", path, {}, ctx=anonymous,
                                 headers={"Authorization": "Bearer wrong-token-wrong-token"})
            assert code == 401, path  # wrong credentials are refused even where anonymous is fine


async def test_an_authenticated_user_without_rights_gets_403_everywhere(secure: SecureApiServer) -> None:
    token = secure.material.config.user_tokens.add(Identity("alice", ("developers",)))
    ctx = secure.ssl_for(None)
    async with aiohttp.ClientSession() as session:
        for method, path, query, verb, resource in REQUESTS:
            code, status = await call(session, secure, method, path, query, ctx=ctx,
                                      headers={"Authorization": f"Bearer {token}"})
            assert code == 403, (method, path, status)
            assert status["reason"] == "Forbidden" and status["kind"] == "Status"
            r = resource_of((method, path, query, verb, resource))
            group = r.group if r else ""
            assert f'User "alice" cannot {verb} resource "{resource}" in API group "{group}"' in status["message"]
        for path in ("/api", "/apis", "/api/v1", "/apis/apps/v1", "/version", "/openapi/v3"):
            code, _ = await call(session, secure, "GET", path, {}, ctx=ctx,
                                 headers={"Authorization": f"Bearer {token}"})
            assert code == 200, path  # discovery is open to every authenticated user
        code, status = await call(session, secure, "GET", "/metrics", {}, ctx=ctx,
                                  headers={"Authorization": f"Bearer {token}"})
        assert code == 403 and status["message"] == 'forbidden: User "alice" cannot get path "/metrics"'


async def test_components_are_refused_what_they_do_not_need(secure: SecureApiServer) -> None:
    cases: list[tuple[Identity, str, str]] = [
        (node_identity("n1"), "POST", "/apis/apps/v1/namespaces/default/deployments"),
        (node_identity("n1"), "DELETE", "/api/v1/namespaces/default"),
        (node_identity("n1"), "POST", "/api/v1/namespaces/default/pods/x/binding"),
        (node_identity("n1"), "GET", "/apis/apps/v1/deployments"),
        (Identity("system:kube-scheduler"), "DELETE", "/api/v1/namespaces/default/pods/x"),
        (Identity("system:kube-scheduler"), "POST", "/api/v1/nodes"),
        (Identity("system:kube-scheduler"), "GET", "/apis/apps/v1/replicasets"),
        (Identity("system:kube-controller-manager"), "POST", "/api/v1/nodes"),
        (Identity("system:kube-controller-manager"), "POST", "/api/v1/namespaces/default/pods/x/binding"),
        (Identity("system:node:n1"), "GET", "/api/v1/pods"),  # the node name without the group is nobody
    ]
    async with aiohttp.ClientSession() as session:
        for identity, method, path in cases:
            code, status = await call(session, secure, method, path, {}, ctx=secure.ssl_for(identity))
            assert code == 403 and status["reason"] == "Forbidden", (identity, method, path, status)
        code, _ = await call(session, secure, "GET", "/api/v1/pods", {}, ctx=secure.ssl_for(ADMIN))
        assert code == 200


async def test_tls_refuses_foreign_and_misused_certificates(secure: SecureApiServer, tmp_path: Path) -> None:
    other = CertificateAuthority.create()
    key = new_key()
    (tmp_path / "x.crt").write_bytes(cert_pem(other.sign_client(key.public_key(), ADMIN)))
    (tmp_path / "x.key").write_bytes(key_pem(key))
    foreign = secure.ssl_for(None)
    foreign.load_cert_chain(tmp_path / "x.crt", tmp_path / "x.key")
    misused = secure.ssl_for(None)  # the server's own certificate is not a client certificate
    misused.load_cert_chain(secure.pki.server.cert, secure.pki.server.key)
    async with aiohttp.ClientSession() as session:
        for ctx in (foreign, misused):
            with pytest.raises(aiohttp.ClientError):
                await call(session, secure, "GET", "/api/v1/pods", {}, ctx=ctx)
        # and a client that does not trust the cluster CA does not trust the server
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await call(session, secure, "GET", "/healthz", {}, ctx=ssl.create_default_context())
