"""api.patch: RFC 7386 merge patch and RFC 6902 JSON patch."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.patch import (
    PatchError,
    create_merge_patch,
    escape_pointer_token,
    json_diff,
    json_equal,
    json_patch,
    merge_patch,
    parse_pointer,
)

FAST = settings(max_examples=100, deadline=None)

scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-5, 5, allow_nan=False) | st.text(max_size=3)
keys = st.text(alphabet="ab/~-0", max_size=3)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=12,
)
json_objects = st.dictionaries(keys, json_values, max_size=4)


def no_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [no_nulls(v) for v in value]
    return value


# ---------------------------------------------------------------- merge patch (RFC 7386 appendix A)


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc_examples(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_merge_patch_result_is_independent() -> None:
    target = {"a": {"b": [1]}, "c": {"d": 1}}
    patch = {"e": {"f": [2]}}
    result = merge_patch(target, patch)
    result["a"]["b"].append(9)
    result["e"]["f"].append(9)
    assert target == {"a": {"b": [1]}, "c": {"d": 1}}
    assert patch == {"e": {"f": [2]}}


# ---------------------------------------------------------------- JSON patch (RFC 6902 appendix A)


@pytest.mark.parametrize(
    ("target", "ops", "result"),
    [
        ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
        (
            {"foo": ["bar", "baz"]},
            [{"op": "add", "path": "/foo/1", "value": "qux"}],
            {"foo": ["bar", "qux", "baz"]},
        ),
        ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
        ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
        (
            {"baz": "qux", "foo": "bar"},
            [{"op": "replace", "path": "/baz", "value": "boo"}],
            {"baz": "boo", "foo": "bar"},
        ),
        (
            {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
            [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
            {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
        ),
        (
            {"foo": ["all", "grass", "cows", "eat"]},
            [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
            {"foo": ["all", "cows", "eat", "grass"]},
        ),
        (
            {"baz": "qux", "foo": ["a", 2, "c"]},
            [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
            {"baz": "qux", "foo": ["a", 2, "c"]},
        ),
        (
            {"foo": "bar"},
            [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
            {"foo": "bar", "child": {"grandchild": {}}},
        ),
        (
            {"foo": "bar"},
            [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
            {"foo": "bar", "baz": "qux"},
        ),
        (
            {"foo": ["bar"]},
            [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
            {"foo": ["bar", ["abc", "def"]]},
        ),
        ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
        (
            {"a/b": 1, "m~n": 2},
            [{"op": "replace", "path": "/a~1b", "value": 3}, {"op": "remove", "path": "/m~0n"}],
            {"a/b": 3},
        ),
        ({"foo": None}, [{"op": "test", "path": "/foo", "value": None}], {"foo": None}),
        ({"a": 1}, [{"op": "replace", "path": "", "value": [1]}], [1]),
        ({"a": 1}, [{"op": "add", "path": "", "value": {"b": 2}}], {"b": 2}),
        ({"a": {"b": [1]}}, [{"op": "copy", "from": "/a/b", "path": "/c"}], {"a": {"b": [1]}, "c": [1]}),
        ({"a": 1}, [{"op": "move", "from": "/a", "path": "/a"}], {"a": 1}),
        ({"a": [1, 2]}, [{"op": "test", "path": "/a", "value": [1.0, 2]}], {"a": [1, 2]}),
    ],
)
def test_json_patch_rfc_examples(target: Any, ops: list[Any], result: Any) -> None:
    before = copy.deepcopy(target)
    assert json_patch(target, ops) == result
    assert target == before


@pytest.mark.parametrize(
    ("target", "ops"),
    [
        ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}]),
        ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}]),
        ({"/": 9}, [{"op": "test", "path": "/~01", "value": "10"}]),
        ({"a": 1}, [{"op": "test", "path": "/a", "value": True}]),
        ({"a": True}, [{"op": "test", "path": "/a", "value": 1}]),
        ({"a": "1"}, [{"op": "test", "path": "/a", "value": 1}]),
        ({"a": 1}, [{"op": "remove", "path": "/b"}]),
        ({"a": 1}, [{"op": "replace", "path": "/b", "value": 1}]),
        ({"a": [1]}, [{"op": "add", "path": "/a/2", "value": 1}]),
        ({"a": [1]}, [{"op": "add", "path": "/a/01", "value": 1}]),
        ({"a": [1]}, [{"op": "remove", "path": "/a/1"}]),
        ({"a": [1]}, [{"op": "remove", "path": "/a/-"}]),
        ({"a": [1]}, [{"op": "add", "path": "/a/x", "value": 1}]),
        ({"a": 1}, [{"op": "add", "path": "/a/b", "value": 1}]),
        ({"a": 1}, [{"op": "add", "path": "a", "value": 1}]),
        ({"a": 1}, [{"op": "add", "path": "/~2", "value": 1}]),
        ({"a": 1}, [{"op": "add", "path": "/b"}]),
        ({"a": 1}, [{"op": "add", "value": 1}]),
        ({"a": 1}, [{"op": "frobnicate", "path": "/a"}]),
        ({"a": 1}, [{"path": "/a"}]),
        ({"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}]),
        ({"a": 1}, [{"op": "copy", "from": "/x", "path": "/b"}]),
        ({"a": 1}, [{"op": "remove", "path": ""}]),
        ({"a": 1}, {"op": "remove", "path": "/a"}),
        ({"a": 1}, ["remove"]),
    ],
)
def test_json_patch_errors(target: Any, ops: Any) -> None:
    with pytest.raises(PatchError):
        json_patch(target, ops)


def test_json_patch_is_atomic() -> None:
    target = {"a": [1, 2], "b": {"c": 1}}
    ops = [
        {"op": "add", "path": "/a/-", "value": 3},
        {"op": "remove", "path": "/b/c"},
        {"op": "test", "path": "/a/0", "value": 99},
    ]
    with pytest.raises(PatchError, match="test operation 2 failed"):
        json_patch(target, ops)
    assert target == {"a": [1, 2], "b": {"c": 1}}


def test_pointer_helpers() -> None:
    assert parse_pointer("") == []
    assert parse_pointer("/") == [""]
    assert parse_pointer("/a~1b/m~0n/~01") == ["a/b", "m~n", "~1"]
    assert escape_pointer_token("a/~b") == "a~1~0b"
    assert json_equal(1, 1.0) and not json_equal(True, 1) and not json_equal({"a": 0}, {"a": False})


# ---------------------------------------------------------------- properties


@FAST
@given(json_values)
def test_merge_with_empty_patch_is_identity(value: Any) -> None:
    if isinstance(value, dict):
        assert merge_patch(value, {}) == value
    else:
        assert merge_patch(value, {}) == {}


@FAST
@given(json_values, json_values)
def test_merge_patch_never_mutates(target: Any, patch: Any) -> None:
    before_target, before_patch = copy.deepcopy(target), copy.deepcopy(patch)
    merge_patch(target, patch)
    assert json_equal(target, before_target) and json_equal(patch, before_patch)


@FAST
@given(json_objects, json_objects)
def test_create_merge_patch_reproduces(original: dict[str, Any], modified: dict[str, Any]) -> None:
    modified = no_nulls(modified)
    assert json_equal(merge_patch(original, create_merge_patch(original, modified)), modified)


@FAST
@given(json_values, json_values)
def test_json_diff_reproduces_target(original: Any, modified: Any) -> None:
    ops = json_diff(original, modified)
    before = copy.deepcopy(original)
    assert json_equal(json_patch(original, ops), modified)
    assert json_equal(original, before)


@FAST
@given(json_objects, json_values)
def test_merge_patch_is_idempotent(target: dict[str, Any], patch: Any) -> None:
    once = merge_patch(target, patch)
    assert json_equal(merge_patch(once, patch), once)
