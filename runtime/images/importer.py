"""Import a root file system (a directory or a tarball) as a single-layer image.

A tarball is first extracted with the same safe extractor as pulled layers, into
a private staging directory, then re-packed: so an imported image can never
carry a member that a pulled one could not, and its layer is packed
deterministically (same tree, same digest).
"""

from __future__ import annotations

import datetime
import shutil
import tempfile
from pathlib import Path

from runtime.images.config import ImageConfig
from runtime.images.errors import ImageError
from runtime.images.oci import OCI_LAYER_GZIP, Descriptor
from runtime.images.pack import PackedLayer, pack_layer
from runtime.images.reference import Reference
from runtime.images.store import ImageStore
from runtime.images.unpack import extract_tar

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class RootfsImportError(ImageError):
    """A root file system that could not be imported."""


def add_layer_from_dir(store: ImageStore, src: Path, *, overlay_upper: bool = False) -> PackedLayer:
    """Pack `src` into a layer blob in the store."""
    packed: list[PackedLayer] = []

    def copy(out: object) -> None:
        packed.append(pack_layer(src, out, overlay_upper=overlay_upper))  # type: ignore[arg-type]

    store.layout.put_stream(copy)
    return packed[0]


def import_rootfs(
    store: ImageStore,
    source: Path,
    *,
    tags: list[str | Reference],
    config: ImageConfig | None = None,
    created: str | None = None,
    created_by: str | None = None,
) -> str:
    """Import `source` (directory or tar, optionally gzipped) as an image; returns its manifest digest."""
    try:
        if source.is_dir():
            layer = add_layer_from_dir(store, source)
        else:
            staging = Path(tempfile.mkdtemp(prefix="import-", dir=store.root / "tmp"))
            try:
                with open(source, "rb") as f:
                    extract_tar(f, staging, label=str(source), whiteouts=False)
                layer = add_layer_from_dir(store, staging)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except (OSError, ImageError) as err:
        raise RootfsImportError(f"failed to import {source}: {err}") from err
    base = config or ImageConfig(env=(f"PATH={DEFAULT_PATH}",))
    when = created or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    final = ImageConfig(
        **{
            **base.__dict__,
            "diff_ids": (layer.diff_id,),
            "created": when,
            "history": ({"created": when, "created_by": created_by or f"kubelite image import {source}"},),
        }
    )
    desc = Descriptor(OCI_LAYER_GZIP, layer.digest, layer.size)
    return store.commit_image(config=final, layers=[desc], tags=tags)
