"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902) on plain JSON values.

Invariants:

- Inputs are never mutated and results never share mutable containers with them:
  callers may freely change what they get back (cached objects stay read-only).
- `json_patch` is atomic: it applies every operation to a private copy and returns
  it, or raises `PatchError` having changed nothing.
- Equality in `test` is JSON equality: `1 == 1.0`, but `true != 1` and
  `"1" != 1` (Python's `True == 1` must not leak into the semantics).

`json_diff` and `create_merge_patch` build patches from two documents; the API
server does not need them, tests and clients do (`json_patch(a, json_diff(a, b)) == b`,
`merge_patch(a, create_merge_patch(a, b)) == b` when `b` has no nulls).
"""

from __future__ import annotations

import copy
from typing import Any

from api.patch.errors import PatchError

__all__ = [
    "create_merge_patch",
    "escape_pointer_token",
    "json_diff",
    "json_equal",
    "json_patch",
    "merge_patch",
    "parse_pointer",
]

JSON = Any


def merge_patch(target: JSON, patch: JSON) -> JSON:
    """Apply an RFC 7386 merge patch: objects merge recursively, null deletes, others replace."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def create_merge_patch(original: JSON, modified: JSON) -> JSON:
    """A merge patch that turns `original` into `modified` (nulls inside `modified` cannot be expressed)."""
    if not isinstance(original, dict) or not isinstance(modified, dict):
        return copy.deepcopy(modified)
    patch: dict[str, Any] = {}
    for key in original:
        if key not in modified:
            patch[key] = None
    for key, value in modified.items():
        if key not in original:
            patch[key] = copy.deepcopy(value)
        elif not json_equal(original[key], value):
            if isinstance(original[key], dict) and isinstance(value, dict):
                patch[key] = create_merge_patch(original[key], value)
            else:
                patch[key] = copy.deepcopy(value)
    return patch


def json_equal(a: JSON, b: JSON) -> bool:
    """Equality of JSON values: numbers by value, booleans distinct from numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------- JSON pointer (RFC 6901)


def escape_pointer_token(token: str) -> str:
    """Escape one reference token: `~` as `~0`, `/` as `~1`."""
    return token.replace("~", "~0").replace("/", "~1")


def parse_pointer(pointer: str) -> list[str]:
    """Split a JSON pointer into unescaped tokens; "" is the whole document."""
    if not isinstance(pointer, str):
        raise PatchError(f"a JSON pointer must be a string, not {pointer!r}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"JSON pointer {pointer!r} must be empty or start with '/'")
    tokens = []
    for raw in pointer[1:].split("/"):
        rest = raw.replace("~0", "").replace("~1", "")
        if "~" in rest:
            raise PatchError(f"JSON pointer {pointer!r}: '~' must be followed by 0 or 1")
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tokens


def _index(token: str, length: int, pointer: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(f"path {pointer!r}: {token!r} is not an array index")
    index = int(token)
    if index > length or (index == length and not allow_end):
        raise PatchError(f"path {pointer!r}: index {index} is out of range (array length {length})")
    return index


def _resolve_parent(doc: JSON, tokens: list[str], pointer: str) -> JSON:
    current = doc
    for token in tokens[:-1]:
        current = _child(current, token, pointer)
    return current


def _child(container: JSON, token: str, pointer: str) -> JSON:
    if isinstance(container, dict):
        if token not in container:
            raise PatchError(f"path {pointer!r}: no member {token!r}")
        return container[token]
    if isinstance(container, list):
        return container[_index(token, len(container), pointer, allow_end=False)]
    raise PatchError(f"path {pointer!r}: cannot descend into a {type(container).__name__} at {token!r}")


def _get(doc: JSON, pointer: str) -> JSON:
    current = doc
    for token in parse_pointer(pointer):
        current = _child(current, token, pointer)
    return current


def _add(doc: JSON, pointer: str, value: JSON) -> JSON:
    tokens = parse_pointer(pointer)
    if not tokens:
        return value
    parent = _resolve_parent(doc, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), pointer, allow_end=True), value)
    else:
        raise PatchError(f"path {pointer!r}: the parent is a {type(parent).__name__}, not an object or array")
    return doc


def _remove(doc: JSON, pointer: str) -> tuple[JSON, JSON]:
    """Remove the value at pointer; return (document, removed value)."""
    tokens = parse_pointer(pointer)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _resolve_parent(doc, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {pointer!r}: no member {last!r} to remove")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(last, len(parent), pointer, allow_end=False))
    raise PatchError(f"path {pointer!r}: the parent is a {type(parent).__name__}, not an object or array")


def _operand(op: dict[str, Any], name: str, position: int) -> Any:
    if name not in op:
        raise PatchError(f"operation {position} ({op.get('op')}) is missing {name!r}")
    return op[name]


def json_patch(target: JSON, ops: list[Any]) -> JSON:
    """Apply an RFC 6902 patch atomically; raise PatchError on a bad operation or failed test."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be an array of operations")
    doc = copy.deepcopy(target)
    for position, op in enumerate(ops):
        if not isinstance(op, dict):
            raise PatchError(f"operation {position} must be an object, not {op!r}")
        kind = op.get("op")
        path = _operand(op, "path", position)
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(_operand(op, "value", position)))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            value = copy.deepcopy(_operand(op, "value", position))
            if not parse_pointer(path):
                doc = value
            else:
                doc, _ = _remove(doc, path)
                doc = _add(doc, path, value)
        elif kind == "move":
            source = _operand(op, "from", position)
            if not isinstance(source, str):
                raise PatchError(f"operation {position} (move): 'from' must be a string")
            if path == source:
                _get(doc, source)
                continue
            if path.startswith(source + "/") or source == "":
                raise PatchError(f"operation {position}: cannot move {source!r} into its child {path!r}")
            doc, value = _remove(doc, source)
            doc = _add(doc, path, value)
        elif kind == "copy":
            source = _operand(op, "from", position)
            if not isinstance(source, str):
                raise PatchError(f"operation {position} (copy): 'from' must be a string")
            doc = _add(doc, path, copy.deepcopy(_get(doc, source)))
        elif kind == "test":
            expected = _operand(op, "value", position)
            actual = _get(doc, path)
            if not json_equal(actual, expected):
                raise PatchError(f"test operation {position} failed: {path!r} is {actual!r} not {expected!r}")
        else:
            raise PatchError(
                f"operation {position}: unknown op {kind!r} (want add, remove, replace, move, copy or test)"
            )
    return doc


def json_diff(original: JSON, modified: JSON, pointer: str = "") -> list[dict[str, Any]]:
    """A JSON patch turning `original` into `modified` (objects key by key, arrays by position)."""
    if json_equal(original, modified):
        return []
    if isinstance(original, dict) and isinstance(modified, dict):
        ops: list[dict[str, Any]] = []
        for key in original:
            child = f"{pointer}/{escape_pointer_token(key)}"
            if key not in modified:
                ops.append({"op": "remove", "path": child})
            else:
                ops.extend(json_diff(original[key], modified[key], child))
        for key, value in modified.items():
            if key not in original:
                child = f"{pointer}/{escape_pointer_token(key)}"
                ops.append({"op": "add", "path": child, "value": copy.deepcopy(value)})
        return ops
    if isinstance(original, list) and isinstance(modified, list):
        ops = []
        common = min(len(original), len(modified))
        for i in range(common):
            ops.extend(json_diff(original[i], modified[i], f"{pointer}/{i}"))
        for i in range(len(original) - 1, common - 1, -1):
            ops.append({"op": "remove", "path": f"{pointer}/{i}"})
        for value in modified[common:]:
            ops.append({"op": "add", "path": f"{pointer}/-", "value": copy.deepcopy(value)})
        return ops
    return [{"op": "replace", "path": pointer, "value": copy.deepcopy(modified)}]
