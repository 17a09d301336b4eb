"""An OCI image layout on disk: `oci-layout`, `index.json`, `blobs/sha256/<hex>`.

The directory is a valid OCI image layout at every moment, so skopeo and umoci
can read it (`skopeo inspect oci:<dir>:busybox:latest`). Invariants:
- a file under blobs/ always holds exactly the content its name is the digest
  of: blobs are written to a temporary file outside blobs/, verified, then
  renamed into place (rename is atomic on one file system);
- index.json is replaced atomically and updated under an exclusive flock, so
  concurrent processes sharing the store (kubelet and `kubelite build`) do not
  lose each other's tags.
Tags are index entries annotated `org.opencontainers.image.ref.name` with the
full local key (`name:tag`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from runtime.images.digest import HashingWriter, digest_bytes, hex_part, parse_digest
from runtime.images.errors import ImageError
from runtime.images.oci import OCI_INDEX, OCI_LAYOUT_VERSION, REF_NAME, Descriptor, canonical_json


class LayoutError(ImageError):
    """A blob or index operation on the layout that failed."""


class OciLayout:
    """Blobs and the tag index of one OCI layout directory.

    `tmp_dir` must be on the same file system as `root` and is where blobs are
    staged before verification.
    """

    def __init__(self, root: Path, *, tmp_dir: Path) -> None:
        self.root = root
        self.tmp_dir = tmp_dir
        self.blobs = root / "blobs" / "sha256"
        self._lock_path = root / ".index.lock"

    def init(self) -> None:
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        layout = self.root / "oci-layout"
        if not layout.exists():
            layout.write_text(json.dumps({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
        if not (self.root / "index.json").exists():
            with self._locked():
                if not (self.root / "index.json").exists():
                    self._write_index([])

    # blobs

    def blob_path(self, digest: str) -> Path:
        return self.blobs / hex_part(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError as err:
            raise LayoutError(f"blob {digest} is not in the store") from err

    def put_bytes(self, data: bytes, *, expected: str | None = None) -> str:
        digest = digest_bytes(data)
        if expected is not None and parse_digest(expected) != digest:
            raise LayoutError(f"digest mismatch: expected {expected}, content is {digest}")
        if not self.has_blob(digest):
            with self.writer(expected=digest) as w:
                w.write(data)
        return digest

    @contextlib.contextmanager
    def writer(self, *, expected: str | None = None) -> Iterator[HashingWriter]:
        """Stage a blob; on leaving the block, verify it against `expected` and commit it.

        The committed digest is available as `writer.digest` after the block.
        """
        tmp = self.tmp_dir / f"blob-{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as f:
                w = HashingWriter(f)
                yield w
                f.flush()
                os.fsync(f.fileno())
            if expected is not None and w.digest != expected:
                raise LayoutError(f"digest mismatch: expected {expected}, received content is {w.digest}")
            os.rename(tmp, self.blob_path(w.digest))
        finally:
            tmp.unlink(missing_ok=True)

    def put_stream(self, copy: Callable[[BinaryIO], None], *, expected: str | None = None) -> tuple[str, int]:
        """Stage whatever `copy` writes, verify and commit; returns (digest, size)."""
        with self.writer(expected=expected) as w:
            copy(w)  # type: ignore[arg-type]
        return w.digest, w.size

    def all_blobs(self) -> list[str]:
        return sorted("sha256:" + p.name for p in self.blobs.iterdir() if len(p.name) == 64)

    def remove_blob(self, digest: str) -> int:
        path = self.blob_path(digest)
        try:
            size = path.stat().st_size
            path.unlink()
            return size
        except FileNotFoundError:
            return 0

    # index

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def read_index(self) -> list[Descriptor]:
        try:
            obj = json.loads((self.root / "index.json").read_bytes())
        except FileNotFoundError:
            return []
        except ValueError as err:
            raise LayoutError(f"corrupt {self.root / 'index.json'}: {err}") from err
        return [Descriptor.from_json(d) for d in obj.get("manifests") or []]

    def _write_index(self, manifests: list[Descriptor]) -> None:
        body = canonical_json(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [d.to_json() for d in manifests]}
        )
        tmp = self.root / f".index.json.{uuid.uuid4().hex[:8]}"
        tmp.write_bytes(body)
        os.rename(tmp, self.root / "index.json")

    def update_index(self, change: Callable[[list[Descriptor]], list[Descriptor]]) -> None:
        """Apply `change` to the index under the lock (read-modify-write, atomic replace)."""
        with self._locked():
            self._write_index(change(self.read_index()))

    def tags(self) -> dict[str, Descriptor]:
        """Local key (`name:tag`) -> manifest descriptor."""
        return {d.annotations[REF_NAME]: d for d in self.read_index() if REF_NAME in d.annotations}
