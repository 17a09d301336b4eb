"""Pull refuses a manifest whose bytes do not match the digest asked for or announced."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from runtime.images.config import ImageConfig
from runtime.images.digest import digest_bytes
from runtime.images.oci import OCI_CONFIG, OCI_MANIFEST, Descriptor, Manifest
from runtime.images.registry import RegistryClient, RegistryError
from runtime.images.store import ImageStore

CONFIG = ImageConfig(cmd=("true",)).encode()
MANIFEST = Manifest(OCI_MANIFEST, Descriptor(OCI_CONFIG, digest_bytes(CONFIG), len(CONFIG)), ()).encode()
LIE = "sha256:" + "0" * 64


@pytest.fixture
async def lying_registry() -> AsyncIterator[str]:
    async def manifest(request: web.Request) -> web.Response:
        headers = {"Docker-Content-Digest": LIE} if request.match_info["ref"] == "announced" else {}
        return web.Response(body=MANIFEST, content_type=OCI_MANIFEST, headers=headers)

    app = web.Application()
    app.router.add_get("/v2/app/manifests/{ref}", manifest)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        await server.close()


@pytest.fixture
def store() -> Iterator[ImageStore]:
    root = Path(tempfile.mkdtemp(prefix="kltest-images-"))
    try:
        yield ImageStore(root)
    finally:
        shutil.rmtree(root)


@pytest.mark.parametrize("ref", [f"app@{LIE}", "app:announced"])
async def test_manifest_digest_mismatch_is_refused(lying_registry: str, store: ImageStore, ref: str) -> None:
    async with RegistryClient(store) as client:
        with pytest.raises(RegistryError, match=f"has digest {digest_bytes(MANIFEST)}, expected {LIE}"):
            await client.pull(f"{lying_registry}/{ref}")
    assert store.layout.all_blobs() == []
    assert store.layout.tags() == {}
