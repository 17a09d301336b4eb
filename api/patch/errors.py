"""The one error type of the patch package."""

from __future__ import annotations

__all__ = ["PatchError"]


class PatchError(ValueError):
    """A patch that cannot be applied: malformed, pointing nowhere, or a failed `test`.

    The API server answers it with a 422 (or 400 for a malformed body); the target is
    never partly patched, because every function here works on a copy.
    """
