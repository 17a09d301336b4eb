"""OCI and Docker v2 media types, descriptors and manifests.

Manifests are kept as the exact bytes they were written or pulled as: their
digest is the digest of those bytes, so re-serialising one would change its
identity. `Manifest.parse` reads them; `Manifest.encode` produces the bytes for
images made here (canonical JSON: sorted keys, no spaces), so rebuilding the
same content yields the same digest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from runtime.images.digest import parse_digest
from runtime.images.errors import ImageError

OCI_LAYOUT_VERSION = "1.0.0"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
LAYER_TYPES = (OCI_LAYER_GZIP, OCI_LAYER_TAR, DOCKER_LAYER_GZIP)
REF_NAME = "org.opencontainers.image.ref.name"


class ManifestError(ImageError):
    """A manifest, index or descriptor that does not parse."""


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Descriptor:
    """A typed, sized, digested pointer to a blob."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict, compare=False)
    platform: dict[str, str] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = dict(self.platform)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Descriptor:
        try:
            return cls(
                media_type=str(obj["mediaType"]),
                digest=parse_digest(str(obj["digest"])),
                size=int(obj["size"]),
                annotations=dict(obj.get("annotations") or {}),
                platform=dict(obj.get("platform") or {}),
            )
        except (KeyError, TypeError, ValueError, ImageError) as err:
            raise ManifestError(f"invalid descriptor {obj!r}: {err}") from err


@dataclass(frozen=True)
class Manifest:
    """An image manifest: one config blob and the ordered layers, bottom first."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]

    @classmethod
    def parse(cls, data: bytes, *, media_type: str | None = None) -> Manifest:
        try:
            obj = json.loads(data)
            kind = obj.get("mediaType") or media_type or OCI_MANIFEST
            if kind not in MANIFEST_TYPES:
                raise ManifestError(f"not an image manifest: media type {kind}")
            return cls(
                media_type=kind,
                config=Descriptor.from_json(obj["config"]),
                layers=tuple(Descriptor.from_json(d) for d in obj.get("layers") or []),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ManifestError(f"invalid manifest: {err}") from err

    def encode(self) -> bytes:
        return canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": self.media_type,
                "config": self.config.to_json(),
                "layers": [d.to_json() for d in self.layers],
            }
        )


def parse_index(data: bytes) -> list[Descriptor]:
    """The manifests listed in an OCI index or Docker manifest list."""
    try:
        obj = json.loads(data)
        return [Descriptor.from_json(d) for d in obj.get("manifests") or []]
    except (ValueError, AttributeError) as err:
        raise ManifestError(f"invalid image index: {err}") from err


def media_type_of(data: bytes) -> str | None:
    """The mediaType a manifest or index declares, or None (then guess from its shape)."""
    try:
        obj = json.loads(data)
    except ValueError as err:
        raise ManifestError(f"manifest is not JSON: {err}") from err
    if not isinstance(obj, dict):
        raise ManifestError("manifest is not a JSON object")
    kind = obj.get("mediaType")
    if isinstance(kind, str):
        return kind
    if "manifests" in obj:
        return OCI_INDEX
    if "config" in obj:
        return OCI_MANIFEST
    return None
