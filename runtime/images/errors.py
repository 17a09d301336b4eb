"""The root of the image package's error hierarchy.

Each module of this package raises exactly one error type, a subclass of
`ImageError`, so callers can catch the whole package with one clause or a single
concern (unpacking, the registry, ...) precisely. Messages name the object at
fault ("failed to unpack layer sha256:...: member ../x escapes the layer
directory") and chain the underlying cause with `raise ... from err`.
"""

from __future__ import annotations


class ImageError(Exception):
    """Anything that went wrong in runtime.images."""
