"""`status.images` as the kubelet reports it: one entry per image, largest first, at most 50."""

from __future__ import annotations

from kubelet.node import node_images
from runtime.images.store import ImageSummary


def summary(key: str, digest: str, size: int) -> ImageSummary:
    return ImageSummary(key=key, manifest_digest=f"sha256:{digest:0>64}", config_digest="", size=size, created="")


def test_tags_of_one_image_are_one_entry_and_largest_come_first() -> None:
    images = node_images([summary("busybox:latest", "a", 1_000), summary("localhost:5000/app:v1", "b", 9_000),
                          summary("busybox:1.36", "a", 1_000)])
    assert images == [
        {"names": ["localhost:5000/app:v1", f"localhost:5000/app@sha256:{'b':0>64}"], "sizeBytes": 9_000},
        {"names": ["busybox:1.36", "busybox:latest", f"busybox@sha256:{'a':0>64}"], "sizeBytes": 1_000},
    ]


def test_at_most_fifty_images_the_largest() -> None:
    many = [summary(f"img{i}:1", format(i, "x"), i) for i in range(1, 61)]
    images = node_images(many)
    assert len(images) == 50
    assert [i["sizeBytes"] for i in images] == list(range(60, 10, -1))
