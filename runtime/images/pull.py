"""Pull-if-absent: what the kubelet calls before starting a container.

`ensure_image` applies a Kubernetes imagePullPolicy and returns the image's
rootfs (unpacked layers and config), so that after it returns a container can
be started with no further image I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from runtime.images.errors import ImageError
from runtime.images.mirrors import Mirrors
from runtime.images.reference import Reference, parse_reference
from runtime.images.registry import RegistryClient, RegistryError
from runtime.images.store import ImageRootfs, ImageStore

PullPolicy = Literal["Always", "IfNotPresent", "Never"]


class PullError(ImageError):
    """The image is not available under the given pull policy."""


async def ensure_image(
    store: ImageStore,
    reference: str | Reference,
    *,
    policy: PullPolicy = "IfNotPresent",
    insecure: bool = False,
    mirrors: Mirrors | None = None,
    progress: Callable[[str], None] | None = None,
    lease: str | None = None,
) -> ImageRootfs:
    """Make `reference` present per `policy`, unpack its layers and return its rootfs.

    Pass the container's id as `lease` so GC keeps the layers while it exists;
    release it with `store.release(container_id)` when the container is removed.
    A pull tries the reference's `mirrors` first, then its registry (see mirrors.py).
    """
    ref = reference if isinstance(reference, Reference) else parse_reference(reference)
    present = store.has_image(ref)
    if policy == "Never" and not present:
        raise PullError(f"image {ref} is not present and the pull policy is Never (ErrImageNeverPull)")
    if policy == "Always" or not present:
        try:
            async with RegistryClient(store, insecure=insecure, mirrors=mirrors, progress=progress) as client:
                await client.pull(ref)
        except RegistryError as err:  # its message names the image and every host tried
            raise PullError(str(err)) from err
        except ImageError as err:
            raise PullError(f"failed to pull image {ref}: {err}") from err
    return await store.rootfs(ref, lease=lease)
