"""Content digests: the only identity a blob has.

Invariant: a digest string handled by this package is always of the form
`sha256:<64 lowercase hex>`; `parse_digest` is the one gate that admits strings
from outside (tar members, registries, the command line).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import BinaryIO

from runtime.images.errors import ImageError

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
CHUNK = 1 << 20


class DigestError(ImageError):
    """A malformed digest, or content that does not match its digest."""


def parse_digest(value: str) -> str:
    """Return `value` if it is a well-formed sha256 digest, else raise DigestError."""
    if not _DIGEST_RE.match(value):
        raise DigestError(f"invalid digest {value!r}: expected sha256:<64 hex digits>")
    return value


def digest_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def hex_part(digest: str) -> str:
    """The hex half of a digest, used as a file name."""
    return parse_digest(digest).split(":", 1)[1]


def short_id(digest: str) -> str:
    """The 12-hex-digit form `docker images` shows."""
    return hex_part(digest)[:12]


class HashingWriter:
    """A write-through wrapper that hashes and counts what passes through it."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._inner.write(data)

    def flush(self) -> None:
        self._inner.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()
