"""The Node's `status.images`: what the node holds (busybox, imported at start), updated when
the node's images change."""

from __future__ import annotations

import asyncio

import pytest

from api.client import Client
from api.core import Node
from tests.node.test_kubelet_pods import NODE, Agent, agent

__all__ = ["agent"]

pytestmark = [pytest.mark.root]


async def images_until(client: Client, name: str, timeout: float = 20) -> list[dict[str, object]]:
    deadline = asyncio.get_running_loop().time() + timeout
    images: list[dict[str, object]] = []
    while asyncio.get_running_loop().time() < deadline:
        node = await client.get(Node, NODE)
        images = (node.status.images if node.status else None) or []
        if any(name in i["names"] for i in images):  # type: ignore[operator]
            return images
        await asyncio.sleep(0.2)
    raise AssertionError(f"{name} never listed in status.images: {images}")


async def test_node_status_lists_its_images(agent: Agent, client: Client) -> None:
    images = await images_until(client, "busybox:latest")
    [busybox] = [i for i in images if "busybox:latest" in i["names"]]  # type: ignore[operator]
    assert isinstance(busybox["sizeBytes"], int) and busybox["sizeBytes"] > 100_000
    assert any(str(n).startswith("busybox@sha256:") for n in busybox["names"])  # type: ignore[attr-defined]

    assert agent.kubelet and agent.kubelet.runtime
    agent.kubelet.runtime.images.tag("busybox:latest", "kltest/extra:1")
    images = await images_until(client, "kltest/extra:1")
    [same] = [i for i in images if "kltest/extra:1" in i["names"]]  # type: ignore[operator]
    assert "busybox:latest" in same["names"]  # type: ignore[operator]  # one image, two names
