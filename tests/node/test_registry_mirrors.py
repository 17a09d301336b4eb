"""Registry mirrors against a real docker-registry on 127.0.0.1: a Docker Hub name is pulled
through the first mirror that has it, failures fall through to the next host, and the
kubelet runs its local copy of a Docker Hub image that no host can give it."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.core import Container
from kubelet.cri import PodRuntime
from runtime.images.mirrors import Mirrors
from runtime.images.pull import PullError, ensure_image
from runtime.images.registry import RegistryClient
from runtime.images.store import ImageStore
from tests.node.test_images_fixtures import kltest_dir
from tests.node.test_registry_distribution import busybox_store, free_port, pytestmark, registry, registry_server

__all__ = ["busybox_store", "kltest_dir", "pytestmark", "registry", "registry_server"]


async def test_a_docker_hub_name_is_pulled_through_a_mirror_after_a_dead_one(
    registry: str, busybox_store: ImageStore, kltest_dir: Path
) -> None:
    async with RegistryClient(busybox_store) as client:
        await client.push("busybox:latest", f"{registry}/kltest/tools:1")
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    mirrors = Mirrors.parse([f"docker.io={dead}", f"docker.io=http://{registry}"])
    node = ImageStore(kltest_dir / "node")
    said: list[str] = []
    async with RegistryClient(node, mirrors=mirrors, progress=said.append) as client:
        pulled = await client.pull("kltest/tools:1")  # = docker.io/kltest/tools:1
    assert pulled.manifest_digest == busybox_store.resolve("busybox:latest")
    assert node.resolve("kltest/tools:1") == pulled.manifest_digest  # stored under the name as written
    assert any(line.startswith(f"mirror {dead} failed") for line in said), said
    assert f"Pulled kltest/tools:1 from mirror http://{registry}" in said


async def test_a_pull_that_fails_everywhere_names_every_host(registry: str, kltest_dir: Path) -> None:
    mirrors = Mirrors.parse([f"docker.io=http://{registry}"])
    with pytest.raises(PullError) as failed:
        await ensure_image(ImageStore(kltest_dir / "node"), "kltest/absent:1", policy="IfNotPresent",
                           mirrors=mirrors)
    message = str(failed.value)
    assert message.startswith("failed to pull kltest/absent:1: ")
    assert f"mirror http://{registry}: " in message and "404" in message
    assert "registry registry-1.docker.io: " in message  # then Docker Hub itself, unreachable here


async def test_kubelet_pull_policy_with_a_mirror(registry: str, busybox_store: ImageStore, kltest_dir: Path) -> None:
    """Always goes to the mirror (a rebuilt tag is picked up); a Docker Hub image the node holds
    and no host has still runs; an image nobody has is an error."""
    mirrors = Mirrors.parse([f"docker.io=http://{registry}"])
    node = ImageStore(kltest_dir / "node")
    pods = PodRuntime(None, node, kltest_dir / "root", mirrors=mirrors)  # type: ignore[arg-type]  # pull needs no runtime
    async with RegistryClient(busybox_store) as client:
        await client.push("busybox:latest", f"{registry}/library/kltest-app:latest")
    await pods.pull(Container(name="app", image="kltest-app"))  # Always, as :latest implies
    first = node.resolve("kltest-app")
    assert first == busybox_store.resolve("busybox:latest")

    from runtime.images.config import ImageConfig
    from runtime.images.importer import import_rootfs

    rootfs = kltest_dir / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin" / "app").write_text("v2\n")
    rebuilt = import_rootfs(busybox_store, rootfs, tags=["kltest-app:latest"], config=ImageConfig(cmd=("/bin/app",)))
    async with RegistryClient(busybox_store) as client:
        await client.push("kltest-app:latest", f"{registry}/library/kltest-app:latest")
    await pods.pull(Container(name="app", image="kltest-app"))
    assert node.resolve("kltest-app") == rebuilt != first  # the new build, not the cached one

    node.tag(first, "kltest-local:latest")  # on the node only, like its own busybox import
    await pods.pull(Container(name="app", image="kltest-local"))  # no host has it: the local copy runs
    assert node.resolve("kltest-local") == first
    with pytest.raises(PullError):
        await pods.pull(Container(name="app", image="kltest-nowhere"))
