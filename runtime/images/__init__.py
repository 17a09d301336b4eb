"""OCI images for kubelite: store, safe layer unpacking, import, registry client.

The kubelet and container runtime use `ImageStore.rootfs()` (layers for
overlayfs + config) and `ensure_image()` (pull if absent); see README.md.
"""

from runtime.images.config import ImageConfig
from runtime.images.errors import ImageError
from runtime.images.mirrors import MirrorError, Mirrors
from runtime.images.pull import PullError, PullPolicy, ensure_image
from runtime.images.reference import Reference, parse_reference
from runtime.images.registry import RegistryClient, RegistryError
from runtime.images.store import GcResult, ImageNotFound, ImageRootfs, ImageStore, ImageSummary

__all__ = [
    "GcResult",
    "ImageConfig",
    "ImageError",
    "ImageNotFound",
    "ImageRootfs",
    "ImageStore",
    "ImageSummary",
    "MirrorError",
    "Mirrors",
    "PullError",
    "PullPolicy",
    "Reference",
    "RegistryClient",
    "RegistryError",
    "ensure_image",
    "parse_reference",
]
