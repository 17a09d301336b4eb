"""JSON on the hot paths: orjson when it can, the standard library when it cannot.

Every create, update and watch event is encoded or decoded at least once in the API
server and again in each informer; orjson does both several times faster than `json`.
The output differs from `json.dumps(separators=(",", ":"))` only in how it spells the
same document: non-ASCII text is written as UTF-8 rather than `\\uXXXX` escapes (both are
valid JSON that decode to the same value). Key order is kept.

Where orjson refuses what the standard library accepts, the standard library decides,
so behaviour stays the same: integers beyond 64 bits and non-string keys on encode;
`NaN`/`Infinity` and lone surrogates on decode (and its error messages for bad input).
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes."""
    try:
        return orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError: big ints, non-str keys, unknown types
        return json.dumps(obj, separators=(",", ":")).encode()


def loads(data: bytes | bytearray | str) -> Any:
    """Decode JSON; raises ValueError (json.JSONDecodeError) on invalid input, as `json.loads` does."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
