"""Kubernetes strategic merge patch on plain JSON values.

The rules, as apimachinery's `strategicpatch` applies them on the server (with
`MergeParallelList` and `IgnoreUnmatchedNulls`):

- objects merge recursively; `null` deletes a member; scalars replace;
- a list whose schema says `merge` with a merge key is merged element by element,
  matching on that key (containers by `name`, ports by `containerPort`...); patch
  elements with an unknown key are appended; a `merge` list of scalars
  (finalizers, podCIDRs) becomes the union of both; every other list is replaced;
- after a merge, elements named by the patch come in the patch's order and the
  server's other elements keep their places relative to them, or `$setElementOrder/<f>`
  fixes the order of the named ones (it may name elements the patch body leaves out:
  kubectl's client-side apply sends only the changed fields of each container);
- directives: `{"$patch": "delete", <mergeKey>: k}` in a list removes that element;
  `{"$patch": "replace"}` in a list replaces the whole list with the other elements;
  `"$patch": "replace"` in an object replaces the object; `"$patch": "delete"` in an
  object empties it (apimachinery leaves `{}`); `$deleteFromPrimitiveList/<f>` removes values from a scalar
  list; `$retainKeys` drops every member of the original not listed.

Invariants: inputs are never mutated and the result shares no containers with them;
no directive survives into the result (values new to the target are stripped of
directives and nulls too, which is what the server wants to store); an error raises
`PatchError` and leaves nothing half-applied.
"""

from __future__ import annotations

import copy
from typing import Any

from api.patch.errors import PatchError
from api.patch.jsonpatch import json_equal
from api.patch.schema import PatchSchema

__all__ = ["strategic_merge_patch"]

JSON = Any
_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"
_SET_ORDER = "$setElementOrder/"
_DELETED = object()  # what `_clean` returns for a value marked `$patch: delete`


def strategic_merge_patch(target: JSON, patch: JSON, schema: PatchSchema) -> JSON:
    """Apply a strategic merge patch to `target` using `schema` (see `strategy_for`)."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    original = copy.deepcopy(target) if isinstance(target, dict) else {}
    result = _merge_map(original, copy.deepcopy(patch), schema)
    return {} if result is _DELETED else result


# ---------------------------------------------------------------- objects


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: PatchSchema) -> Any:
    """Merge `patch` into `original` (both private copies, modified in place)."""
    if _DIRECTIVE in patch:
        directive = patch.pop(_DIRECTIVE)
        if directive == "replace":
            return _clean(patch)
        if directive == "delete":
            return _DELETED
        raise PatchError(f"unknown $patch directive {directive!r} in an object (want replace or delete)")

    if _RETAIN_KEYS in patch:
        _retain_keys(original, patch, patch.pop(_RETAIN_KEYS))

    orders: dict[str, list[Any]] = {}
    deletions: dict[str, list[Any]] = {}
    for key in [k for k in patch if k.startswith("$")]:
        value = patch.pop(key)
        if key.startswith(_SET_ORDER):
            name = key[len(_SET_ORDER) :]
            if not isinstance(value, list):
                raise PatchError(f"{key} must be a list")
            orders[name] = value
        elif key.startswith(_DELETE_PRIMITIVES):
            name = key[len(_DELETE_PRIMITIVES) :]
            if not isinstance(value, list):
                raise PatchError(f"{key} must be a list")
            deletions[name] = value
        else:
            raise PatchError(f"unknown patch directive {key!r}")

    for name, values in deletions.items():
        current = original.get(name)
        if isinstance(current, list):
            original[name] = [v for v in current if not any(json_equal(v, d) for d in values)]

    # $setElementOrder places the server's other elements by where they were before the merge.
    server_orders = {name: list(original[name]) for name in orders if isinstance(original.get(name), list)}
    for name, order in orders.items():
        _check_order(patch.get(name), order, schema.field_schema(name).merge_key, name)

    for key, value in patch.items():
        field = schema.field_schema(key)
        if value is None:
            original.pop(key, None)
            continue
        current = original.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            if "replace" in field.strategies:
                merged = _clean(value)
            else:
                merged = _merge_map(current, value, field)
        elif isinstance(current, list) and isinstance(value, list):
            merged = _merge_list(current, value, field, key) if field.merges else _clean(value)
        else:
            merged = _clean(value)
        # `$patch: delete` on an object leaves it empty, as apimachinery does.
        original[key] = {} if merged is _DELETED else merged

    for name, order in orders.items():
        current = original.get(name)
        if isinstance(current, list):
            field = schema.field_schema(name)
            before = server_orders.get(name, current)
            if field.merges and field.merge_key is not None:
                before = _apimachinery_server_order(before, current, field.merge_key)
            original[name] = _normalize(current, order, before, field.merge_key)
    return original


def _apimachinery_server_order(before: list[Any], merged: list[Any], key: str) -> list[Any]:
    """The server order apimachinery ends up using for `$setElementOrder`.

    apimachinery removes `$patch: delete` elements and appends new ones in place, in
    the backing array it still reads the original order from: the first new elements
    show up in the slots the deleted ones freed. Reproducing that keeps the order of
    a list that a patch both shrinks and grows identical to Kubernetes'.
    """
    kept = [b for b in before if _position(merged, b, key) >= 0]
    if len(kept) == len(before):
        return before
    added = [m for m in merged if _position(before, m, key) < 0]
    return (kept + added)[: len(before)]


def _retain_keys(original: dict[str, Any], patch: dict[str, Any], keys: Any) -> None:
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise PatchError("$retainKeys must be a list of strings")
    retained = set(keys)
    for key, value in patch.items():
        if value is None or key.startswith(("$", _DELETE_PRIMITIVES, _SET_ORDER)):
            continue
        if key not in retained:
            raise PatchError(f"$retainKeys does not list {key!r}, which the patch sets")
    for key in [k for k in original if k not in retained]:
        del original[key]


def _clean(value: Any) -> Any:
    """A value new to the target: drop nulls and directives, honour `$patch` markers."""
    if isinstance(value, dict):
        directive = value.get(_DIRECTIVE)
        if directive == "delete":
            return _DELETED
        if directive not in (None, "replace"):
            raise PatchError(f"unknown $patch directive {directive!r}")
        out = {}
        for key, item in value.items():
            if item is None or key.startswith("$"):
                continue
            cleaned = _clean(item)
            out[key] = {} if cleaned is _DELETED else cleaned
        return out
    if isinstance(value, list):
        items = []
        for item in value:
            if isinstance(item, dict) and item.get(_DIRECTIVE) == "replace" and len(item) == 1:
                continue
            cleaned = _clean(item)
            if cleaned is not _DELETED:
                items.append(cleaned)
        return items
    return value


# ---------------------------------------------------------------- lists


def _merge_list(original: list[Any], patch: list[Any], field: PatchSchema, name: str) -> list[Any]:
    """Merge a `merge`-strategy list: scalars by union, objects by merge key."""
    if not original and not patch:
        return []
    if not any(isinstance(v, dict) for v in [*original, *patch]):
        merged = list(original)
        for value in patch:
            if not any(json_equal(value, have) for have in merged):
                merged.append(value)
        return _normalize(merged, patch, original, None)
    key = field.merge_key
    if key is None:
        raise PatchError(f"cannot merge the list {name!r} of objects without a merge key")
    for item in [*original, *patch]:
        if not isinstance(item, dict):
            raise PatchError(f"list {name!r} mixes objects and other values")

    body: list[dict[str, Any]] = []
    for item in patch:
        directive = item.get(_DIRECTIVE)
        if directive is None:
            if key not in item:
                raise PatchError(f"an element of {name!r} lacks its merge key {key!r}: {item!r}")
            body.append(item)
        elif directive == "delete":
            if key not in item:
                raise PatchError(f"a $patch: delete element of {name!r} lacks its merge key {key!r}")
            original = [o for o in original if not json_equal(o.get(key), item[key])]
        elif directive == "replace":
            return _clean([p for p in patch if p.get(_DIRECTIVE) != "replace"])
        else:
            raise PatchError(f"unknown $patch directive {directive!r} in list {name!r}")

    merged = list(original)
    for item in body:
        position = next((i for i, o in enumerate(merged) if json_equal(o.get(key), item[key])), None)
        if position is None:
            cleaned = _clean(item)
            if cleaned is not _DELETED:
                merged.append(cleaned)
        else:
            result = _merge_map(merged[position], item, field.item_schema())
            if result is _DELETED:
                del merged[position]
            else:
                merged[position] = result
    return _normalize(merged, body, original, key)


def _identity(value: Any, key: str | None) -> Any:
    return value.get(key) if key is not None and isinstance(value, dict) else value


def _position(values: list[Any], value: Any, key: str | None) -> int:
    ident = _identity(value, key)
    for i, candidate in enumerate(values):
        if json_equal(_identity(candidate, key), ident):
            return i
    return -1


def _sorted_by(values: list[Any], order: list[Any], key: str | None) -> list[Any]:
    """Stable sort of `values` by position in `order`; values absent from it go last."""

    def rank(value: Any) -> int:
        found = _position(order, value, key)
        return found if found >= 0 else len(order)

    return sorted(values, key=rank)


def _normalize(merged: list[Any], patch_order: list[Any], server_order: list[Any], key: str | None) -> list[Any]:
    """Order a merged list: patch-named elements in patch order, the rest where the server had them."""
    named = [v for v in merged if _position(patch_order, v, key) >= 0]
    others = [v for v in merged if _position(patch_order, v, key) < 0]
    named = _sorted_by(named, patch_order, key)
    others = _sorted_by(others, server_order, key)
    # Interleave: a server-only element goes before a named one when the server had it earlier.
    out: list[Any] = []
    i = j = 0
    while i < len(others) or j < len(named):
        if j >= len(named):
            out.append(others[i])
            i += 1
        elif i >= len(others):
            out.append(named[j])
            j += 1
        else:
            left = _position(server_order, others[i], key)
            right = _position(server_order, named[j], key)
            if left >= 0 and right >= 0 and left < right:
                out.append(others[i])
                i += 1
            else:
                out.append(named[j])
                j += 1
    return out


def _check_order(body: Any, order: list[Any], key: str | None, name: str) -> None:
    """Every element the patch body names must appear in $setElementOrder, in the same order."""
    if not isinstance(body, list):
        return
    last = -1
    for item in body:
        if isinstance(item, dict) and _DIRECTIVE in item:
            continue
        found = _position(order, item, key)
        if found < 0:
            ident = _identity(item, key)
            raise PatchError(f"$setElementOrder/{name} does not list {ident!r}, which the patch sets")
        if found < last:
            raise PatchError(f"the {name!r} list in the patch is not in $setElementOrder/{name}'s order")
        last = found
