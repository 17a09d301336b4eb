"""The build cache: step key -> the result of running that step once.

A step's key is sha256 over the key of the state before it, the instruction
text and what else the step depends on (the content hash of copied files; the
environment, user and workdir of a RUN; the values variables expand to). After
a step that made a layer, the chain continues from that layer's digest, so a
step re-run because its entry was lost invalidates what follows unless it
reproduced the same layer. Entries are JSON files written atomically; an entry
whose layer blob was garbage-collected is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from runtime.images.errors import ImageError
from runtime.images.oci import Descriptor


class CacheError(ImageError):
    """A cache entry that cannot be written."""


@dataclass(frozen=True)
class CacheEntry:
    created: str  # when the step first ran: reused so a cached rebuild is byte-identical
    layer: Descriptor | None = None
    diff_id: str | None = None


def step_key(parent: str, instruction: str, extra: str) -> str:
    return hashlib.sha256(f"{parent}\n{instruction}\n{extra}".encode()).hexdigest()


def chain_after(key: str, layer: Descriptor | None) -> str:
    """The parent key for the next step."""
    return key if layer is None else hashlib.sha256(f"{key}\n{layer.digest}".encode()).hexdigest()


class BuildCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> CacheEntry | None:
        try:
            obj = json.loads((self.root / f"{key}.json").read_text())
            layer = Descriptor.from_json(obj["layer"]) if obj.get("layer") else None
            return CacheEntry(created=str(obj["created"]), layer=layer, diff_id=obj.get("diff_id"))
        except (OSError, ValueError, KeyError, ImageError):
            return None  # absent or unreadable: a miss, the step runs again

    def put(self, key: str, entry: CacheEntry) -> None:
        body = {
            "created": entry.created,
            "layer": entry.layer.to_json() if entry.layer else None,
            "diff_id": entry.diff_id,
        }
        tmp = self.root / f".{key}.{uuid.uuid4().hex[:8]}"
        try:
            tmp.write_text(json.dumps(body))
            os.rename(tmp, self.root / f"{key}.json")
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise CacheError(f"failed to write build cache entry {key}: {err}") from err
