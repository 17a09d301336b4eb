"""Push and pull against a real registry (Debian's docker-registry) on 127.0.0.1,
and interoperability with skopeo and umoci."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from cli.main import main as kubelite
from runtime.images.busybox import import_busybox
from runtime.images.config import ImageConfig
from runtime.images.importer import import_rootfs
from runtime.images.oci import OCI_INDEX, canonical_json
from runtime.images.pull import PullError, ensure_image
from runtime.images.registry import RegistryClient, RegistryError
from runtime.images.store import ImageStore
from tests.node.test_images_fixtures import kltest_dir, needs_root

__all__ = ["kltest_dir"]

REGISTRY = shutil.which("docker-registry")
pytestmark = [
    pytest.mark.root,
    needs_root,
    pytest.mark.skipif(REGISTRY is None, reason="docker-registry not installed (apt-get install docker-registry)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def registry_server() -> Iterator[tuple[str, Path]]:
    """A real docker-registry on a free loopback port, storage in a kltest temp dir."""
    root = Path(tempfile.mkdtemp(prefix="kltest-registry-"))
    port = free_port()
    (root / "config.yml").write_text(
        "version: 0.1\n"
        "log: {level: error, accesslog: {disabled: true}}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
    )
    proc = subprocess.Popen(
        [str(REGISTRY), "serve", str(root / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"docker-registry did not start: {proc.stderr.read()!r}") from None
                time.sleep(0.02)
        yield f"127.0.0.1:{port}", root / "data"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def registry(registry_server: tuple[str, Path]) -> str:
    return registry_server[0]


@pytest.fixture
async def busybox_store(kltest_dir: Path) -> AsyncIterator[ImageStore]:
    store = ImageStore(kltest_dir / "src")
    import_busybox(store)
    yield store


async def test_push_then_pull_gives_identical_digests(
    registry: str, busybox_store: ImageStore, kltest_dir: Path
) -> None:
    local = busybox_store.resolve("busybox:latest")
    remote = f"{registry}/kltest/busybox:1"
    async with RegistryClient(busybox_store) as client:
        pushed = await client.push("busybox:latest", remote)
        again = await client.push("busybox:latest", remote)
    assert pushed.manifest_digest == local
    assert len(pushed.transferred) == 2  # one layer and the config
    assert sorted(again.skipped) == sorted(pushed.transferred)  # HEAD found them: nothing re-sent
    async with RegistryClient(busybox_store) as client:  # push by digest: an untagged manifest
        by_digest_push = await client.push("busybox:latest", f"{registry}/kltest/untagged@{local}")
    assert by_digest_push.manifest_digest == local

    other = ImageStore(kltest_dir / "dst")
    async with RegistryClient(other) as client:
        pulled = await client.pull(remote)
        by_digest = await client.pull(f"{registry}/kltest/busybox@{local}")
    assert pulled.manifest_digest == local
    assert by_digest.manifest_digest == local and by_digest.transferred == []
    assert other.resolve(remote) == local
    src_manifest = busybox_store.manifest(local)
    for desc in (src_manifest.config, *src_manifest.layers):
        assert other.layout.read_blob(desc.digest) == busybox_store.layout.read_blob(desc.digest)
    rootfs = await other.rootfs(remote)
    assert (rootfs.lowerdirs[0] / "bin/busybox").is_file()
    assert rootfs.config.cmd == ("sh",)


async def test_cross_repository_mount(registry: str, busybox_store: ImageStore) -> None:
    async with RegistryClient(busybox_store) as client:
        await client.push("busybox:latest", f"{registry}/kltest/mount-src:1")
        result = await client.push("busybox:latest", f"{registry}/kltest/mount-dst:1", mount_from="kltest/mount-src")
    assert result.transferred == []
    assert len(result.mounted) == 2


async def test_pull_refuses_tampered_blob(registry_server: tuple[str, Path], kltest_dir: Path) -> None:
    """A registry serving content that does not match its digest: the pull fails, nothing stored."""
    registry, data_dir = registry_server
    store = ImageStore(kltest_dir / "s")
    rootfs = kltest_dir / "r"
    rootfs.mkdir()
    (rootfs / "hello").write_text("hi")
    import_rootfs(store, rootfs, tags=["tamper:1"])
    remote = f"{registry}/kltest/tamper:1"
    async with RegistryClient(store) as client:
        await client.push("tamper:1", remote)
    manifest = store.manifest(store.resolve("tamper:1"))
    layer = manifest.layers[0].digest
    # Swap the blob's bytes on the registry's disk behind its back.
    blob_files = list(data_dir.rglob(f"blobs/sha256/{layer[7:9]}/{layer[7:]}/data"))
    assert blob_files, "registry blob not found on disk"
    for path in blob_files:
        path.write_bytes(b"not the layer")
    fresh = ImageStore(kltest_dir / "fresh")
    async with RegistryClient(fresh) as client:
        with pytest.raises(RegistryError, match="digest mismatch"):
            await client.pull(remote)
    assert not fresh.layout.has_blob(layer)
    assert list((kltest_dir / "fresh/tmp").iterdir()) == []


async def test_ensure_image_policies(registry: str, busybox_store: ImageStore, kltest_dir: Path) -> None:
    remote = f"{registry}/kltest/ensure:1"
    async with RegistryClient(busybox_store) as client:
        await client.push("busybox:latest", remote)
    node = ImageStore(kltest_dir / "node")
    with pytest.raises(PullError, match="ErrImageNeverPull"):
        await ensure_image(node, remote, policy="Never")
    rootfs = await ensure_image(node, remote)
    assert rootfs.manifest_digest == busybox_store.resolve("busybox:latest")
    assert (rootfs.lowerdirs[0] / "bin/sh").is_symlink()
    again = await ensure_image(node, remote, policy="Never")
    assert again.lowerdirs == rootfs.lowerdirs
    with pytest.raises(PullError, match=r"not found|404|MANIFEST_UNKNOWN"):
        await ensure_image(node, f"{registry}/kltest/absent:1")


async def test_skopeo_reads_what_we_pushed(registry: str, busybox_store: ImageStore) -> None:
    remote = f"{registry}/kltest/skopeo:1"
    async with RegistryClient(busybox_store) as client:
        pushed = await client.push("busybox:latest", remote)
    proc = await asyncio.create_subprocess_exec(
        "skopeo",
        "inspect",
        "--tls-verify=false",
        f"docker://{remote}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    info = json.loads(out)
    assert info["Digest"] == pushed.manifest_digest
    assert info["Layers"] == [d.digest for d in busybox_store.manifest(pushed.manifest_digest).layers]


@pytest.mark.skipif(shutil.which("skopeo") is None or shutil.which("umoci") is None, reason="needs skopeo and umoci")
async def test_skopeo_and_umoci_read_our_oci_layout(busybox_store: ImageStore, kltest_dir: Path) -> None:
    layout = busybox_store.layout.root
    copy = await asyncio.create_subprocess_exec(
        "skopeo",
        "copy",
        f"oci:{layout}:busybox:latest",
        f"oci:{kltest_dir / 'copy'}:bb",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await copy.communicate()
    assert copy.returncode == 0, err.decode()
    index = json.loads((kltest_dir / "copy/index.json").read_text())
    assert index["manifests"][0]["digest"] == busybox_store.resolve("busybox:latest")
    bundle = kltest_dir / "bundle"
    unpack = await asyncio.create_subprocess_exec(
        "umoci",
        "unpack",
        "--image",
        f"{layout}:busybox:latest",
        str(bundle),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await unpack.communicate()
    assert unpack.returncode == 0, err.decode()
    assert (bundle / "rootfs/bin/busybox").is_file()
    assert ImageConfig().cmd is None  # (sanity: our config type is importable alongside)


async def test_pull_docker_v2s2_pushed_by_skopeo(registry: str, busybox_store: ImageStore, kltest_dir: Path) -> None:
    """An image another tool pushed in Docker's schema 2 format pulls with the registry's digest."""
    remote = f"{registry}/kltest/v2s2:1"
    copy = await asyncio.create_subprocess_exec(
        "skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--format", "v2s2",
        f"oci:{busybox_store.layout.root}:busybox:latest", f"docker://{remote}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await copy.communicate()
    assert copy.returncode == 0, err.decode()
    inspect = await asyncio.create_subprocess_exec(
        "skopeo", "inspect", "--tls-verify=false", f"docker://{remote}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await inspect.communicate()
    assert inspect.returncode == 0, err.decode()
    store = ImageStore(kltest_dir / "v2s2")
    async with RegistryClient(store) as client:
        pulled = await client.pull(remote)
    assert pulled.manifest_digest == json.loads(out)["Digest"]
    assert store.manifest(pulled.manifest_digest).media_type == "application/vnd.docker.distribution.manifest.v2+json"
    rootfs = await store.rootfs(remote)
    assert (rootfs.lowerdirs[0] / "bin/busybox").is_file()


async def test_pull_through_an_image_index(registry: str, busybox_store: ImageStore, kltest_dir: Path) -> None:
    """A multi-platform tag (OCI index) resolves to the linux/amd64 manifest."""
    digest = busybox_store.resolve("busybox:latest")
    async with RegistryClient(busybox_store) as client:
        await client.push("busybox:latest", f"{registry}/kltest/multi:plain")
    size = len(busybox_store.layout.read_blob(digest))
    index = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size,
                 "platform": {"os": "linux", "architecture": "amd64"}},
            ],
        }
    )  # fmt: skip
    async with (
        aiohttp.ClientSession() as session,
        session.put(
            f"http://{registry}/v2/kltest/multi/manifests/multi", data=index, headers={"Content-Type": OCI_INDEX}
        ) as resp,
    ):
        assert resp.status == 201, await resp.text()
    store = ImageStore(kltest_dir / "multi")
    async with RegistryClient(store) as client:
        pulled = await client.pull(f"{registry}/kltest/multi:multi")
    assert pulled.manifest_digest == digest


def test_cli_push_and_pull(registry: str, kltest_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = ["--root", str(kltest_dir / "cli-src")]
    dst = ["--root", str(kltest_dir / "cli-dst")]
    remote = f"{registry}/kltest/cli:1"
    assert kubelite(["image", "import", "--busybox", *src]) == 0
    assert kubelite(["image", "push", "busybox:latest", remote, *src]) == 0
    pushed = capsys.readouterr().out
    assert "Pushed" in pushed and "digest: sha256:" in pushed
    assert kubelite(["image", "pull", remote, *dst]) == 0
    assert "Pull complete" in capsys.readouterr().out
    assert kubelite(["image", "ls", "-q", *src]) == 0
    src_ids = capsys.readouterr().out
    assert kubelite(["image", "ls", "-q", *dst]) == 0
    assert capsys.readouterr().out == src_ids
    assert kubelite(["image", "pull", f"{registry}/kltest/absent:1", *dst]) == 1
    assert "failed to pull" in capsys.readouterr().err
