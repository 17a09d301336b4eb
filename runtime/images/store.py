"""The image store: an OCI layout plus unpacked layers, under one root directory.

    <root>/oci/            OCI image layout (blobs, index.json with name:tag entries)
    <root>/layers/<hex>/   layer sha256:<hex> unpacked, overlayfs-ready (whiteouts converted)
    <root>/tmp/            staging for blobs and layers being unpacked
    <root>/leases/<name>   what a container, build or pull in progress uses (GC roots)

Invariants:
- every blob is verified against its digest before it becomes visible (see layout.py);
- a layer is unpacked at most once; a directory under layers/ exists only when
  complete, and its content is the verified uncompressed layer (its diff_id is
  checked while extracting when the image config names one);
- `rootfs()` returns lowerdirs in overlayfs order: the top-most layer first;
- GC never removes what a tag or a lease references: a container's layers are
  lower dirs of a live overlay mount, and changing them under it is undefined
  behaviour in overlayfs. The runtime takes a lease (named after the container)
  before it mounts and releases it when the container is removed; builds and
  pulls lease the blobs they have written but not yet tagged.
The store is the node's single source of truth for images: the kubelet, the
container runtime, the builder and the registry client all go through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from runtime.images.config import ImageConfig
from runtime.images.digest import DigestError, hex_part, parse_digest
from runtime.images.errors import ImageError
from runtime.images.layout import OciLayout
from runtime.images.oci import OCI_CONFIG, OCI_MANIFEST, REF_NAME, Descriptor, Manifest
from runtime.images.reference import Reference, parse_reference
from runtime.images.unpack import unpack_layer


class StoreError(ImageError):
    """An image store operation that failed."""


class ImageNotFound(StoreError):
    """The reference names no image in the local store."""


@dataclass(frozen=True)
class ImageRootfs:
    """What a container needs from an image: its layers for overlayfs and its config."""

    reference: str
    manifest_digest: str
    lowerdirs: list[Path]  # top-most layer first, ready for "lowerdir=" + ":".join(...)
    config: ImageConfig


@dataclass(frozen=True)
class ImageSummary:
    key: str  # name:tag
    manifest_digest: str
    config_digest: str  # the "IMAGE ID" docker shows
    size: int  # compressed size of config and layers
    created: str


@dataclass(frozen=True)
class GcResult:
    blobs_removed: int
    layers_removed: int
    bytes_freed: int


_LEASE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


class _HashingReader:
    """Reads through to `inner`, hashing everything read (for the diff_id check)."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.hash.update(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.layout = OciLayout(root / "oci", tmp_dir=root / "tmp")
        self.layers_dir = root / "layers"
        self.leases_dir = root / "leases"
        try:
            self.layout.init()
            self.layers_dir.mkdir(parents=True, exist_ok=True)
            self.leases_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"failed to initialise image store at {root}: {err}") from err

    # lookup

    def resolve(self, ref: str | Reference) -> str:
        """Manifest digest of a local image: by name[:tag], by manifest digest, or by image id prefix."""
        text = str(ref)
        tags = self.layout.tags()
        if isinstance(ref, str):
            if ref.startswith("sha256:") and len(ref) == 71 and self.layout.has_blob(ref):
                return ref
            by_id = self._resolve_id(ref, tags)
            if by_id:
                return by_id
        parsed = ref if isinstance(ref, Reference) else parse_reference(text)
        if parsed.digest:
            if self.layout.has_blob(parsed.digest):
                return parsed.digest
            raise ImageNotFound(f"image {text} not found in the local store")
        desc = tags.get(parsed.local_key())
        if desc is None:
            raise ImageNotFound(f"image {parsed.local_key()} not found in the local store")
        return desc.digest

    def _resolve_id(self, text: str, tags: dict[str, Descriptor]) -> str | None:
        """An image id (config digest, or a >=12-hex prefix of it), as `docker rmi` accepts."""
        prefix = text.removeprefix("sha256:")
        if len(prefix) < 12 or any(c not in "0123456789abcdef" for c in prefix):
            return None
        for desc in tags.values():
            for digest in (desc.digest, self.manifest(desc.digest).config.digest):
                if hex_part(digest).startswith(prefix):
                    return desc.digest
        return None

    def has_image(self, ref: str | Reference) -> bool:
        try:
            self.resolve(ref)
            return True
        except (ImageNotFound, ImageError):
            return False

    def manifest(self, digest: str) -> Manifest:
        return Manifest.parse(self.layout.read_blob(digest))

    def config(self, manifest_digest: str) -> ImageConfig:
        return ImageConfig.parse(self.layout.read_blob(self.manifest(manifest_digest).config.digest))

    def list_images(self) -> list[ImageSummary]:
        out = []
        for key, desc in sorted(self.layout.tags().items()):
            manifest = self.manifest(desc.digest)
            created = ""
            with contextlib.suppress(ImageError):
                created = self.config(desc.digest).created
            size = manifest.config.size + sum(layer.size for layer in manifest.layers)
            out.append(ImageSummary(key, desc.digest, manifest.config.digest, size, created))
        return out

    # writing

    def commit_image(
        self, *, config: ImageConfig, layers: Sequence[Descriptor], tags: Iterable[str | Reference] = ()
    ) -> str:
        """Store config and manifest for already-stored layers; tag it; return the manifest digest."""
        for layer in layers:
            if not self.layout.has_blob(layer.digest):
                raise StoreError(f"cannot commit image: layer {layer.digest} is not in the store")
        config_bytes = config.encode()
        config_desc = Descriptor(OCI_CONFIG, self.layout.put_bytes(config_bytes), len(config_bytes))
        manifest = Manifest(OCI_MANIFEST, config_desc, tuple(layers)).encode()
        digest = self.layout.put_bytes(manifest)
        for tag in tags:
            self.set_tag(tag, Descriptor(OCI_MANIFEST, digest, len(manifest)))
        return digest

    def set_tag(self, ref: str | Reference, manifest: Descriptor) -> str:
        """Point name:tag at `manifest` (replacing what it pointed at); returns the key."""
        parsed = ref if isinstance(ref, Reference) else parse_reference(ref)
        key = parsed.local_key()
        entry = Descriptor(manifest.media_type, manifest.digest, manifest.size, annotations={REF_NAME: key})

        def change(index: list[Descriptor]) -> list[Descriptor]:
            return [d for d in index if d.annotations.get(REF_NAME) != key] + [entry]

        self.layout.update_index(change)
        return key

    def tag(self, source: str | Reference, target: str | Reference) -> str:
        digest = self.resolve(source)
        data = self.layout.read_blob(digest)
        return self.set_tag(target, Descriptor(self.manifest(digest).media_type, digest, len(data)))

    def untag(self, ref: str) -> list[str]:
        """Remove a tag, or every tag of an image given by digest or id; returns removed keys."""
        tags = self.layout.tags()
        key: str | None = None
        with contextlib.suppress(ImageError):
            parsed = parse_reference(ref)
            if not parsed.digest and parsed.local_key() in tags:
                key = parsed.local_key()
        digest = None if key else self.resolve(ref)
        removed: list[str] = []

        def change(index: list[Descriptor]) -> list[Descriptor]:
            keep = []
            for d in index:
                name = d.annotations.get(REF_NAME)
                if name and (name == key or d.digest == digest):
                    removed.append(name)
                else:
                    keep.append(d)
            return keep

        self.layout.update_index(change)
        return removed

    # layers

    def layer_dir(self, digest: str) -> Path:
        return self.layers_dir / hex_part(digest)

    @contextlib.contextmanager
    def _layer_lock(self, digest: str) -> Iterator[None]:
        fd = os.open(self.layers_dir / f".{hex_part(digest)}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def unpack_sync(self, layer: Descriptor, *, diff_id: str | None = None) -> Path:
        """Unpack a stored layer blob once; later calls return the existing directory."""
        dest = self.layer_dir(layer.digest)
        if dest.is_dir():
            return dest
        with self._layer_lock(layer.digest):
            if dest.is_dir():  # another process unpacked it while we waited
                return dest
            path = self.layout.blob_path(layer.digest)
            with open(path, "rb") as raw:
                gzipped = raw.read(2) == b"\x1f\x8b"
                raw.seek(0)
                stream: BinaryIO = gzip.GzipFile(fileobj=raw) if gzipped else raw  # type: ignore[assignment]
                reader = _HashingReader(stream)
                unpack_layer(reader, dest, label=layer.digest)  # type: ignore[arg-type]
                reader.drain()
            actual = "sha256:" + reader.hash.hexdigest()
            if diff_id and actual != diff_id:
                shutil.rmtree(dest, ignore_errors=True)
                raise StoreError(
                    f"failed to unpack layer {layer.digest}: uncompressed digest {actual} "
                    f"does not match the config's diff_id {diff_id}"
                )
        return dest

    async def rootfs(self, ref: str | Reference, *, lease: str | None = None) -> ImageRootfs:
        """Resolve `ref` to its unpacked layers (top-most first) and config, unpacking as needed.

        With `lease`, the image is leased under that name before anything is
        unpacked, so a concurrent GC cannot remove its layers (see `lease`).
        """
        digest = self.resolve(ref)
        if lease is not None:
            self.lease(lease, digest)
        manifest = self.manifest(digest)
        config = self.config(digest)
        diff_ids: list[str | None] = list(config.diff_ids)
        if len(diff_ids) != len(manifest.layers):
            diff_ids = [None] * len(manifest.layers)
        dirs = []
        for layer, diff_id in zip(manifest.layers, diff_ids, strict=True):
            dirs.append(await asyncio.to_thread(self.unpack_sync, layer, diff_id=diff_id))
        return ImageRootfs(str(ref), digest, list(reversed(dirs)), config)

    # leases: what running containers use

    def _lease_path(self, name: str) -> Path:
        if not _LEASE_RE.match(name):
            raise StoreError(f"invalid lease name {name!r}: use letters, digits, '.', '_' and '-'")
        return self.leases_dir / name

    def lease(self, name: str, manifest_digest: str | None, *, blobs: Iterable[str] = ()) -> None:
        """Protect an image (and loose `blobs`) from GC while `name` uses them; replaces lease `name`."""
        path = self._lease_path(name)
        body = {
            "manifest": parse_digest(manifest_digest) if manifest_digest else None,
            "blobs": [parse_digest(b) for b in blobs],
        }
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(json.dumps(body))
        os.rename(tmp, path)

    def release(self, name: str) -> None:
        """Drop lease `name`; what it held becomes collectable unless tagged or leased elsewhere."""
        self._lease_path(name).unlink(missing_ok=True)

    def leases(self) -> dict[str, str | None]:
        """Lease name -> leased manifest digest (None for leases of loose blobs only)."""
        return {name: manifest for name, (manifest, _) in self._read_leases().items()}

    def _read_leases(self) -> dict[str, tuple[str | None, list[str]]]:
        out: dict[str, tuple[str | None, list[str]]] = {}
        for path in self.leases_dir.iterdir():
            if path.name.startswith("."):
                continue
            with contextlib.suppress(OSError, ValueError, ImageError):
                obj = json.loads(path.read_text())
                manifest = parse_digest(obj["manifest"]) if obj.get("manifest") else None
                out[path.name] = (manifest, [parse_digest(b) for b in obj.get("blobs") or []])
        return out

    # garbage collection

    def gc(self, *, keep: Iterable[str] = (), min_age: float = 0.0) -> GcResult:
        """Remove blobs and unpacked layers that no tag, lease or manifest in `keep` uses.

        Builds and pulls lease what they write until it is tagged; `min_age`
        additionally spares anything younger (for writers that take no lease).
        """
        roots = {d.digest for d in self.layout.read_index()} | {parse_digest(k) for k in keep}
        live: set[str] = set()
        for manifest_digest, leased_blobs in self._read_leases().values():
            if manifest_digest:
                roots.add(manifest_digest)
            live.update(leased_blobs)
        for digest in roots:
            live.add(digest)
            try:
                manifest = self.manifest(digest)
            except ImageError:
                continue
            live.add(manifest.config.digest)
            live.update(layer.digest for layer in manifest.layers)
        now = time.time()

        def old(path: Path) -> bool:
            try:
                return now - path.lstat().st_mtime >= min_age
            except FileNotFoundError:
                return False

        blobs_removed = freed = layers_removed = 0
        for digest in self.layout.all_blobs():
            if digest not in live and old(self.layout.blob_path(digest)):
                freed += self.layout.remove_blob(digest)
                blobs_removed += 1
        for entry in self.layers_dir.iterdir():
            if entry.name.startswith("."):
                continue
            try:
                digest = parse_digest("sha256:" + entry.name)
            except DigestError:
                continue
            if digest not in live and old(entry):
                shutil.rmtree(entry, ignore_errors=True)
                (self.layers_dir / f".{entry.name}.lock").unlink(missing_ok=True)
                layers_removed += 1
        return GcResult(blobs_removed, layers_removed, freed)
