"""The anonymous bearer-token flow and the http/https choice, against a small in-process server.

The real registry (tests/node/test_registry_distribution.py) runs without auth,
so the token flow is exercised here with a loopback aiohttp app that behaves
like Docker Hub's: 401 + WWW-Authenticate, then a token from the realm.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from runtime.images.auth import parse_challenge
from runtime.images.config import ImageConfig
from runtime.images.digest import digest_bytes
from runtime.images.oci import OCI_CONFIG, OCI_MANIFEST, Descriptor, Manifest
from runtime.images.registry import RegistryClient, RegistryError, is_plain_http
from runtime.images.store import ImageStore

TOKEN = "kltest-token"


def test_parse_challenge() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull",
    }


@pytest.mark.parametrize(
    ("registry", "plain"),
    [
        ("127.0.0.1:5000", True),
        ("localhost:5000", True),
        ("localhost", True),
        ("[::1]:5000", True),
        ("registry.example", False),
        ("10.0.0.1:5000", False),
        ("localhost.evil.example:5000", False),
    ],
)
def test_plain_http_only_for_loopback(registry: str, plain: bool) -> None:
    assert is_plain_http(registry) is plain


@pytest.fixture
async def token_registry() -> AsyncIterator[tuple[str, dict[str, list[str]]]]:
    config = ImageConfig(cmd=("true",)).encode()
    manifest = Manifest(OCI_MANIFEST, Descriptor(OCI_CONFIG, digest_bytes(config), len(config)), ()).encode()
    seen: dict[str, list[str]] = {"token_queries": [], "auth": []}
    server: TestServer

    async def token(request: web.Request) -> web.Response:
        seen["token_queries"].append(request.query_string)
        return web.json_response({"token": TOKEN})

    def authorized(request: web.Request) -> bool:
        seen["auth"].append(request.headers.get("Authorization", ""))
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    def challenge() -> web.Response:
        realm = f"http://127.0.0.1:{server.port}/token"
        return web.Response(
            status=401,
            headers={
                "WWW-Authenticate": f'Bearer realm="{realm}",service="kltest",scope="repository:app:pull"'
            },
        )

    async def get_manifest(request: web.Request) -> web.Response:
        if not authorized(request):
            return challenge()
        return web.Response(body=manifest, content_type=OCI_MANIFEST)

    async def get_blob(request: web.Request) -> web.Response:
        if not authorized(request):
            return challenge()
        return web.Response(body=config)

    app = web.Application()
    app.router.add_get("/token", token)
    app.router.add_get("/v2/app/manifests/{ref}", get_manifest)
    app.router.add_get("/v2/app/blobs/{digest}", get_blob)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"127.0.0.1:{server.port}", seen
    finally:
        await server.close()


async def test_anonymous_bearer_token_flow(token_registry: tuple[str, dict[str, list[str]]]) -> None:
    host, seen = token_registry
    root = Path(tempfile.mkdtemp(prefix="kltest-images-"))
    try:
        store = ImageStore(root)
        async with RegistryClient(store) as client:
            result = await client.pull(f"{host}/app:v1")
        assert store.resolve(f"{host}/app:v1") == result.manifest_digest
        assert seen["token_queries"] == ["service=kltest&scope=repository:app:pull"]  # one token, reused
        assert seen["auth"][0] == "" and seen["auth"][1:] == [f"Bearer {TOKEN}"] * (len(seen["auth"]) - 1)
        assert store.config(result.manifest_digest).cmd == ("true",)
    finally:
        shutil.rmtree(root)


async def test_basic_auth_challenge_is_reported() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="x"'})

    app = web.Application()
    app.router.add_get("/v2/app/manifests/{ref}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    root = Path(tempfile.mkdtemp(prefix="kltest-images-"))
    try:
        async with RegistryClient(ImageStore(root)) as client:
            with pytest.raises(RegistryError, match="anonymous bearer tokens only"):
                await client.pull(f"127.0.0.1:{server.port}/app:v1")
    finally:
        await server.close()
        shutil.rmtree(root)
