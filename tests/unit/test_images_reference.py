"""Image references and manifests: parsing rules, pure."""

from __future__ import annotations

import pytest

from runtime.images.config import ImageConfig
from runtime.images.oci import OCI_CONFIG, OCI_MANIFEST, Descriptor, Manifest, ManifestError
from runtime.images.reference import InvalidReference, parse_reference

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "name", "tag", "registry", "repository", "key"),
    [
        ("busybox", "busybox", None, "registry-1.docker.io", "library/busybox", "busybox:latest"),
        ("busybox:1.36", "busybox", "1.36", "registry-1.docker.io", "library/busybox", "busybox:1.36"),
        ("me/app:v1", "me/app", "v1", "registry-1.docker.io", "me/app", "me/app:v1"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000/app", None, "127.0.0.1:5000", "app", "127.0.0.1:5000/app:latest"),
        ("localhost/a/b:t", "localhost/a/b", "t", "localhost", "a/b", "localhost/a/b:t"),
        (f"reg.example/app@{D}", "reg.example/app", None, "reg.example", "app", f"reg.example/app@{D}"),
        (f"app:v1@{D}", "app", "v1", "registry-1.docker.io", "library/app", "app:v1"),
    ],
)
def test_parse_reference(text: str, name: str, tag: str | None, registry: str, repository: str, key: str) -> None:
    ref = parse_reference(text)
    assert (ref.name, ref.tag, ref.registry, ref.repository, ref.local_key()) == (
        name, tag, registry, repository, key,
    )  # fmt: skip
    assert str(ref) == text


@pytest.mark.parametrize("text", ["", "UPPER", "a:b:c", "app@sha256:short", "a//b", "-a", "app:bad tag"])
def test_invalid_references(text: str) -> None:
    with pytest.raises(InvalidReference):
        parse_reference(text)


def test_manifest_round_trip_is_canonical() -> None:
    config = ImageConfig(cmd=("sh",), env=("A=1",), exposed_ports=("80/tcp",))
    assert ImageConfig.parse(config.encode()) == config
    m = Manifest(OCI_MANIFEST, Descriptor(OCI_CONFIG, D, 10), (Descriptor("x", D, 1),))
    assert Manifest.parse(m.encode()) == m
    assert m.encode() == Manifest.parse(m.encode()).encode()
    with pytest.raises(ManifestError):
        Manifest.parse(b'{"mediaType": "application/vnd.oci.image.index.v1+json"}')
