"""Patching plain JSON values: merge patch, JSON patch and strategic merge patch.

- `merge_patch` (RFC 7386, `application/merge-patch+json`)
- `json_patch` (RFC 6902, `application/json-patch+json`), atomic
- `strategic_merge_patch` (`application/strategic-merge-patch+json`) with the
  per-kind list merge rules of `strategy_for(kind)`

Every function takes JSON values (dict, list, str, int, float, bool, None), never
mutates them, returns a fresh value, and raises `PatchError` (a ValueError) when the
patch cannot be applied.
"""

from api.patch.errors import PatchError
from api.patch.jsonpatch import (
    create_merge_patch,
    escape_pointer_token,
    json_diff,
    json_equal,
    json_patch,
    merge_patch,
    parse_pointer,
)
from api.patch.schema import PatchSchema, strategy_for
from api.patch.strategic import strategic_merge_patch

__all__ = [
    "PatchError",
    "PatchSchema",
    "create_merge_patch",
    "escape_pointer_token",
    "json_diff",
    "json_equal",
    "json_patch",
    "merge_patch",
    "parse_pointer",
    "strategic_merge_patch",
    "strategy_for",
]
