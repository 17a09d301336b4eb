"""api.selectors: label and field selectors, string and object forms."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.selectors import (
    FieldSelector,
    LabelSelector,
    Requirement,
    SelectorError,
    escape_field_value,
    label_selector_from_dict,
    parse_field_selector,
    parse_label_selector,
    selector_from_labels,
)

FAST = settings(max_examples=150, deadline=None)
LABELS = {"app": "web", "tier": "frontend", "env": "prod", "example.com/team": "a", "n": "7", "empty": ""}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("env in (prod,staging)", True),
        ("env in (dev)", False),
        ("missing in (a)", False),
        ("env notin (dev,qa)", True),
        ("env notin (prod)", False),
        ("missing notin (a)", True),
        ("app=web,tier=frontend", True),
        ("app=web,tier=backend", False),
        ("example.com/team=a", True),
        ("empty=", True),
        ("empty in ()", True),
        ("empty", True),
        ("n>5", True),
        ("n<5", False),
        ("app>5", False),
        ("missing<5", False),
        ("  app = web ,  env in ( prod , qa )  ", True),
        ("x in (foo,,baz),app,z notin ()", False),
    ],
)
def test_matches(selector: str, matches: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is matches


@pytest.mark.parametrize(
    ("selector", "canonical"),
    [
        ("", ""),
        ("b=1,a=2", "a=2,b=1"),
        ("a==b", "a==b"),
        ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
        ("a in (b, a, b)", "a in (a,b)"),
        ("!a,a", "!a,a"),
        ("in in (in,notin)", "in in (in,notin)"),
        ("a=", "a="),
        ("a > 10", "a>10"),
    ],
)
def test_canonical_string(selector: str, canonical: str) -> None:
    assert str(parse_label_selector(selector)) == canonical


@pytest.mark.parametrize(
    "selector",
    [
        ",",
        "a,",
        ",a",
        "a,,b",
        "a=b=c",
        "!a=b",
        "!",
        "a in b",
        "a in (b",
        "a in (b c)",
        "a notin",
        "a b",
        "=b",
        "a=b c",
        "-a=b",
        "a!b",
        "a>b",
        "a/b/c",
        "/a",
        "Example.com/a=b",
        "a=-b",
        "a=" + "x" * 64,
        "k" * 64,
        "a in (b))",
        "a (b)",
        "a=(b)",
        "a<",
    ],
)
def test_rejects_garbage(selector: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(selector)


def test_long_prefix_and_name_limits() -> None:
    parse_label_selector(f"{'a' * 253}/{'b' * 63}=ok")
    with pytest.raises(SelectorError, match="prefix"):
        parse_label_selector(f"{'a' * 254}/b")
    with pytest.raises(SelectorError, match="name part"):
        parse_label_selector(f"a/{'b' * 64}")


def test_dict_form() -> None:
    sel = label_selector_from_dict(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "qa"]},
                {"key": "tier", "operator": "NotIn", "values": ["db"]},
                {"key": "app", "operator": "Exists"},
                {"key": "gone", "operator": "DoesNotExist"},
            ],
        }
    )
    assert str(sel) == "app=web,app,env in (prod,qa),!gone,tier notin (db)"
    assert sel.matches(LABELS)
    assert not sel.matches({**LABELS, "gone": "x"})
    assert label_selector_from_dict({}).matches({}) is True
    assert label_selector_from_dict({"matchLabels": None, "matchExpressions": None}).empty


@pytest.mark.parametrize(
    "selector",
    [
        {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
        {"matchExpressions": [{"key": "a", "operator": "In"}]},
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
        {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
        {"matchExpressions": [{"operator": "Exists"}]},
        {"matchExpressions": {"key": "a"}},
        {"matchLabels": {"a": 1}},
        {"matchLabels": {"bad key": "x"}},
        {"matchLabels": ["a"]},
    ],
)
def test_dict_form_rejects(selector: dict[str, Any]) -> None:
    with pytest.raises(SelectorError):
        label_selector_from_dict(selector)


def test_selector_from_labels() -> None:
    sel = selector_from_labels({"tier": "web", "app": "x"})
    assert str(sel) == "app=x,tier=web"
    assert sel.matches({"app": "x", "tier": "web", "more": "y"})
    assert not sel.matches({"app": "x"})
    assert LabelSelector().matches(None)


# ---------------------------------------------------------------- label properties

keys = st.sampled_from(["a", "b", "app", "example.com/k", "x_y.z-1"])
values = st.sampled_from(["", "v", "w", "prod", "1", "10", "X.y_z-0"])
label_sets = st.dictionaries(keys, values, max_size=5)


@st.composite
def requirements(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    key = draw(keys)
    op = draw(st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt"]))
    if op in ("in", "notin"):
        vals = draw(st.lists(values, min_size=1, max_size=3))
    elif op in ("gt", "lt"):
        vals = [draw(st.sampled_from(["0", "1", "5", "10"]))]
    elif op in ("exists", "!"):
        vals = []
    else:
        vals = [draw(values)]
    return key, op, vals


def render(key: str, op: str, vals: list[str], space: str) -> str:
    """Write a requirement independently of the module's own __str__."""
    if op == "exists":
        return key
    if op == "!":
        return f"!{space}{key}"
    if op in ("in", "notin"):
        return f"{key} {op}{space}({f'{space},{space}'.join(vals)})"
    symbol = {"gt": ">", "lt": "<"}.get(op, op)
    return f"{key}{space}{symbol}{space}{vals[0]}"


def reference(key: str, op: str, vals: list[str], labels: dict[str, str]) -> bool:
    if op == "exists":
        return key in labels
    if op == "!":
        return key not in labels
    if op in ("=", "==", "in"):
        return labels.get(key) in vals
    if op in ("!=", "notin"):
        return labels.get(key) not in vals
    if key not in labels or not labels[key].isdigit():
        return False
    return int(labels[key]) > int(vals[0]) if op == "gt" else int(labels[key]) < int(vals[0])


@FAST
@given(st.lists(requirements(), max_size=4), st.sampled_from(["", " ", "  "]), label_sets)
def test_matches_agrees_with_reference(
    reqs: list[tuple[str, str, list[str]]], space: str, labels: dict[str, str]
) -> None:
    text = f"{space},{space}".join(render(k, op, v, space) for k, op, v in reqs)
    sel = parse_label_selector(text)
    assert sel.matches(labels) == all(reference(k, op, v, labels) for k, op, v in reqs)


@FAST
@given(st.lists(requirements(), max_size=4), st.sampled_from(["", " "]))
def test_string_round_trip(reqs: list[tuple[str, str, list[str]]], space: str) -> None:
    sel = parse_label_selector(",".join(render(k, op, v, space) for k, op, v in reqs))
    assert parse_label_selector(str(sel)) == sel
    assert str(parse_label_selector(str(sel))) == str(sel)


@FAST
@given(keys, st.lists(values, min_size=1, max_size=3), label_sets)
def test_notin_is_not_in_on_present_keys(key: str, vals: list[str], labels: dict[str, str]) -> None:
    inside = Requirement.new(key, "in", vals).matches(labels)
    outside = Requirement.new(key, "notin", vals).matches(labels)
    if key in labels:
        assert outside == (not inside)
    else:
        assert outside and not inside


@FAST
@given(label_sets, label_sets)
def test_selector_from_labels_is_subset_test(wanted: dict[str, str], labels: dict[str, str]) -> None:
    assert selector_from_labels(wanted).matches(labels) == (wanted.items() <= labels.items())


@FAST
@given(st.dictionaries(keys, values, max_size=3), st.lists(requirements(), max_size=3), label_sets)
def test_dict_form_agrees_with_string_form(
    match_labels: dict[str, str], reqs: list[tuple[str, str, list[str]]], labels: dict[str, str]
) -> None:
    ops = {"in": "In", "notin": "NotIn", "exists": "Exists", "!": "DoesNotExist"}
    exprs = [{"key": k, "operator": ops[op], "values": v} for k, op, v in reqs if op in ops]
    as_dict = label_selector_from_dict({"matchLabels": match_labels, "matchExpressions": exprs})
    as_text = parse_label_selector(str(as_dict))
    assert as_dict == as_text
    assert as_dict.matches(labels) == as_text.matches(labels)


@FAST
@given(st.text(alphabet="ab=!(),<> in", max_size=12))
def test_parse_total(text: str) -> None:
    """Any string parses or raises SelectorError; nothing else escapes."""
    try:
        parse_label_selector(text)
    except SelectorError:
        pass


# ---------------------------------------------------------------- field selectors

POD = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "node-a", "unschedulable": True, "priority": 5},
    "status": {"phase": "Running"},
}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("metadata.name=web-1", True),
        ("metadata.name==web-1", True),
        ("metadata.name!=web-1", False),
        ("metadata.namespace=default,status.phase=Running", True),
        ("status.phase!=Running", False),
        ("spec.nodeName=", False),
        ("spec.hostname=", True),  # missing reads as ""
        ("spec.hostname!=", False),
        ("spec.nodeName.deeper=", True),
        ("spec.unschedulable=true", True),
        ("spec.priority=5", True),
        ("metadata.name=web\\,1", False),
    ],
)
def test_field_matches(selector: str, matches: bool) -> None:
    assert parse_field_selector(selector).matches(POD) is matches


def test_field_fields_and_string() -> None:
    sel = parse_field_selector("status.phase!=Running,metadata.name=a\\=b,spec.nodeName==n,status.phase!=Failed")
    assert sel.fields() == ["metadata.name", "spec.nodeName", "status.phase"]
    assert str(sel) == "metadata.name=a\\=b,spec.nodeName=n,status.phase!=Failed,status.phase!=Running"
    assert parse_field_selector(str(sel)) == sel
    assert FieldSelector().matches({})
    assert parse_field_selector(",,").empty


@pytest.mark.parametrize("selector", ["a", "=x", "a=b=c", "a=b,c", "a=b\\", "a=\\x", "a b=c", "a..b=c", ".a=b"])
def test_field_rejects(selector: str) -> None:
    with pytest.raises(SelectorError):
        parse_field_selector(selector)


field_values = st.text(alphabet="ab,=\\ .-", max_size=6)
field_paths = st.sampled_from(["metadata.name", "metadata.namespace", "spec.nodeName", "status.phase", "a.b.c"])


@FAST
@given(st.lists(st.tuples(field_paths, st.sampled_from(["=", "==", "!="]), field_values), max_size=4))
def test_field_round_trip_and_reference(terms: list[tuple[str, str, str]]) -> None:
    text = ",".join(f"{path}{op}{escape_field_value(value)}" for path, op, value in terms)
    sel = parse_field_selector(text)
    assert parse_field_selector(str(sel)) == sel
    obj = {"metadata": {"name": "ab", "namespace": ""}, "spec": {"nodeName": "a,b"}, "status": {}}

    def lookup(path: str) -> str:
        current: Any = obj
        for part in path.split("."):
            current = current.get(part, "") if isinstance(current, dict) else ""
        return current if isinstance(current, str) else ""

    expected = all((lookup(p) == v) == (op != "!=") for p, op, v in terms)
    assert sel.matches(obj) == expected
    assert set(sel.fields()) == {p for p, _, _ in terms}
