"""Label and field selectors: parsing, canonical string form, and matching.

Label selectors come in two forms with one meaning:

- the string form of `?labelSelector=` and `kubectl -l`: comma-separated (AND)
  requirements `key=value`, `key==value`, `key!=value`, `key in (a,b)`,
  `key notin (a,b)`, `key` (exists), `!key` (does not exist), and Kubernetes'
  numeric `key>5` / `key<5`;
- the API object form `{matchLabels: {...}, matchExpressions: [{key, operator, values}]}`
  found in Deployment and ReplicaSet specs.

Both become a `LabelSelector`, an immutable AND of `Requirement`s kept sorted by key
(stable), so `str()` is canonical: `parse_label_selector(str(s)) == s` for every
selector, and set values print sorted. Keys and values are validated as Kubernetes
does (qualified names, label values of at most 63 characters); every error is a
`SelectorError` whose message names the offending piece. An empty selector matches
everything; whether an *absent* selector means "everything" or "nothing" is the
caller's decision.

Semantics, as in Kubernetes: `in`/`=`/`==` need the key present with a listed value;
`notin`/`!=` are true when the key is absent; `>`/`<` need the key present with an
integer value. One deliberate strictness: `!key=value` (which Kubernetes quietly
reads as `key=value`) is refused.

Field selectors (`?fieldSelector=`) are `path=value`, `path==value`, `path!=value`
terms joined by commas, with `\\`, `\\,` and `\\=` escapes in values. A
`FieldSelector` matches a JSON object by dotted-path lookup, a missing field reading
as the empty string; `fields()` lists the paths so the server can refuse those it
does not index.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "SelectorError",
    "escape_field_value",
    "label_key_errors",
    "label_selector_from_dict",
    "label_value_errors",
    "parse_field_selector",
    "parse_label_selector",
    "selector_from_labels",
    "validate_label_key",
    "validate_label_value",
]


class SelectorError(ValueError):
    """A label or field selector that cannot be parsed or is invalid."""


# ---------------------------------------------------------------- validation

_NAME_MAX = 63
_PREFIX_MAX = 253
_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS1123_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def label_key_errors(key: str) -> list[str]:
    """Every reason `key` is not a valid label key (a qualified name); empty if valid."""
    errors: list[str] = []
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        elif len(prefix) > _PREFIX_MAX:
            errors.append(f"prefix part must be no more than {_PREFIX_MAX} characters")
        elif not _DNS1123_SUBDOMAIN_RE.fullmatch(prefix):
            errors.append(
                "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character"
            )
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character with an optional DNS subdomain prefix "
            "and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > _NAME_MAX:
        errors.append(f"name part must be no more than {_NAME_MAX} characters")
    elif not _NAME_RE.fullmatch(name):
        errors.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with an alphanumeric character"
        )
    return errors


def label_value_errors(value: str) -> list[str]:
    """Every reason `value` is not a valid label value; empty if valid."""
    errors: list[str] = []
    if len(value) > _NAME_MAX:
        errors.append(f"must be no more than {_NAME_MAX} characters")
    if value and not _NAME_RE.fullmatch(value):
        errors.append(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
            "or '.', and must start and end with an alphanumeric character"
        )
    return errors


def validate_label_key(key: str) -> None:
    """Raise SelectorError unless `key` is a valid label key."""
    errors = label_key_errors(key)
    if errors:
        raise SelectorError(f"invalid label key {key!r}: {'; '.join(errors)}")


def validate_label_value(value: str) -> None:
    """Raise SelectorError unless `value` is a valid label value."""
    errors = label_value_errors(value)
    if errors:
        raise SelectorError(f"invalid label value {value!r}: {'; '.join(errors)}")


# ---------------------------------------------------------------- label requirements

IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GREATER_THAN, LESS_THAN = "exists", "!", "gt", "lt"
_SET_OPS = frozenset({IN, NOT_IN})
_SINGLE_VALUE_OPS = frozenset({EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN})
_NO_VALUE_OPS = frozenset({EXISTS, DOES_NOT_EXIST})
_INT64 = re.compile(r"[+-]?[0-9]+")


def _parse_int64(text: str) -> int | None:
    if not _INT64.fullmatch(text):
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector. Build it with `Requirement.new` to validate it."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    @classmethod
    def new(cls, key: str, operator: str, values: Iterable[str] = ()) -> Requirement:
        """A validated requirement; values are de-duplicated and sorted."""
        validate_label_key(key)
        vals = tuple(sorted(set(values)))
        if operator in _SET_OPS:
            if not vals:
                raise SelectorError(f"for 'in', 'notin' operators, values set can't be empty (key {key!r})")
        elif operator in _SINGLE_VALUE_OPS:
            if len(vals) != 1:
                raise SelectorError(f"exact-match compatibility requires one single value (key {key!r})")
            if operator in (GREATER_THAN, LESS_THAN) and _parse_int64(vals[0]) is None:
                raise SelectorError(
                    f"for 'Gt', 'Lt' operators, the value must be an integer (key {key!r}, value {vals[0]!r})"
                )
        elif operator in _NO_VALUE_OPS:
            if vals:
                raise SelectorError(f"values set must be empty for exists and does not exist (key {key!r})")
        else:
            raise SelectorError(f"operator {operator!r} is not recognized")
        for value in vals:
            validate_label_value(value)
        return cls(key, operator, vals)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a set of labels satisfies this requirement."""
        op = self.operator
        present = self.key in labels
        if op == EXISTS:
            return present
        if op == DOES_NOT_EXIST:
            return not present
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return present and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return not present or labels[self.key] not in self.values
        if not present:
            return False
        have = _parse_int64(labels[self.key])
        want = _parse_int64(self.values[0])
        if have is None or want is None:
            return False
        return have > want if op == GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return f"!{self.key}"
        joined = ",".join(self.values)
        if op in _SET_OPS:
            return f"{self.key} {op} ({joined})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{symbol}{joined}"


@dataclass(frozen=True)
class LabelSelector:
    """An AND of requirements, sorted by key; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def of(cls, requirements: Iterable[Requirement]) -> LabelSelector:
        return cls(tuple(sorted(requirements, key=lambda r: r.key)))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether every requirement holds for `labels` (None counts as no labels)."""
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def selector_from_labels(labels: Mapping[str, str]) -> LabelSelector:
    """The selector `k1=v1,k2=v2` that matches objects carrying all of `labels`."""
    return LabelSelector.of(Requirement.new(k, EQUALS, [v]) for k, v in labels.items())


# ---------------------------------------------------------------- string form: lexer and parser

_WHITESPACE = frozenset(" \t\r\n")
_SPECIAL = frozenset("=!(),<>")
_TWO_CHAR = frozenset({"!=", "=="})
_IDENT, _END = "identifier", "end of string"


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokens as (kind, literal); kind is _IDENT, _END, or the symbol/keyword itself."""
    tokens: list[tuple[str, str]] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= end:
            tokens.append((_END, ""))
            return tokens
        ch = text[pos]
        if ch in _SPECIAL:
            pair = text[pos : pos + 2]
            symbol = pair if pair in _TWO_CHAR else ch
            tokens.append((symbol, symbol))
            pos += len(symbol)
            continue
        start = pos
        while pos < end and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            pos += 1
        word = text[start:pos]
        tokens.append((word if word in (IN, NOT_IN) else _IDENT, word))


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def peek(self, *, values: bool = True) -> tuple[str, str]:
        kind, lit = self.tokens[self.pos]
        if values and kind in (IN, NOT_IN):
            kind = _IDENT  # 'in' and 'notin' are plain words where a key or value is expected
        return kind, lit

    def take(self, *, values: bool = True) -> tuple[str, str]:
        token = self.peek(values=values)
        self.pos += 1
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, lit = self.peek()
            if kind == _END:
                return requirements
            if kind not in (_IDENT, "!"):
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            requirements.append(self.requirement())
            kind, lit = self.take()
            if kind == _END:
                return requirements
            if kind != ",":
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            kind, lit = self.peek()
            if kind not in (_IDENT, "!"):
                raise SelectorError(f"found '{lit or kind}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        negated = False
        kind, lit = self.take()
        if kind == "!":
            negated = True
            kind, lit = self.take()
        if kind != _IDENT:
            raise SelectorError(f"found '{lit or kind}', expected: identifier")
        key = lit
        validate_label_key(key)
        follow, follow_lit = self.peek(values=False)
        if follow in (_END, ","):
            return Requirement.new(key, DOES_NOT_EXIST if negated else EXISTS)
        if negated:
            raise SelectorError(f"'!{key}' must stand alone, found '{follow_lit}' after it")
        operator = self.operator()
        values = self.set_values() if operator in _SET_OPS else self.exact_value()
        return Requirement.new(key, operator, values)

    def operator(self) -> str:
        kind, lit = self.take(values=False)
        ops = {
            IN: IN,
            NOT_IN: NOT_IN,
            "=": EQUALS,
            "==": DOUBLE_EQUALS,
            "!=": NOT_EQUALS,
            ">": GREATER_THAN,
            "<": LESS_THAN,
        }
        if kind not in ops:
            raise SelectorError(f"found '{lit or kind}', expected: in, notin, =, ==, !=, gt, lt")
        return ops[kind]

    def exact_value(self) -> list[str]:
        kind, lit = self.peek()
        if kind in (_END, ","):
            return [""]
        self.take()
        if kind != _IDENT:
            raise SelectorError(f"found '{lit}', expected: identifier")
        return [lit]

    def set_values(self) -> list[str]:
        kind, lit = self.take()
        if kind != "(":
            raise SelectorError(f"found '{lit or kind}' expected: '('")
        kind, lit = self.peek()
        if kind == ")":
            self.take()
            return [""]
        if kind not in (_IDENT, ","):
            raise SelectorError(f"found '{lit or kind}', expected: ',', ')' or identifier")
        values: list[str] = []
        while True:
            kind, lit = self.take()
            if kind == _IDENT:
                values.append(lit)
                follow, follow_lit = self.peek()
                if follow == ")":
                    break
                if follow != ",":
                    raise SelectorError(f"found '{follow_lit or follow}', expected: ',' or ')'")
            elif kind == ",":
                if not values:
                    values.append("")  # "(,a)"
                follow, _ = self.peek()
                if follow in (")", ","):
                    values.append("")  # "(a,)" and "(a,,b)"
                if follow == ")":
                    break
            else:
                raise SelectorError(f"found '{lit or kind}', expected: ',', or identifier")
        self.take()  # the ")"
        return values


def parse_label_selector(text: str) -> LabelSelector:
    """Parse the string form of a label selector (`?labelSelector=`, `kubectl -l`)."""
    try:
        requirements = _Parser(text).parse()
    except SelectorError as err:
        raise SelectorError(f"unable to parse requirement: {err}") from None
    return LabelSelector.of(requirements)


# ---------------------------------------------------------------- object form

_DICT_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def label_selector_from_dict(selector: Mapping[str, Any]) -> LabelSelector:
    """Convert the API object form (`matchLabels`, `matchExpressions`) to a LabelSelector."""
    if not isinstance(selector, Mapping):
        raise SelectorError("a label selector must be an object with matchLabels and/or matchExpressions")
    requirements: list[Requirement] = []
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise SelectorError("matchLabels must be an object of label keys to values")
    for key, value in match_labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise SelectorError(f"matchLabels entry {key!r}: keys and values must be strings")
        requirements.append(Requirement.new(key, EQUALS, [value]))
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise SelectorError("matchExpressions must be a list")
    for index, expr in enumerate(expressions):
        where = f"matchExpressions[{index}]"
        if not isinstance(expr, Mapping):
            raise SelectorError(f"{where} must be an object with key, operator and values")
        key, operator, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if not isinstance(key, str):
            raise SelectorError(f"{where}.key: Required value")
        if operator not in _DICT_OPERATORS:
            raise SelectorError(f"{where}.operator: {operator!r} is not a valid label selector operator")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SelectorError(f"{where}.values must be a list of strings")
        op = _DICT_OPERATORS[operator]
        if op in _SET_OPS and not values:
            raise SelectorError(f"{where}.values: Required value: must be specified when `operator` is 'In' or 'NotIn'")
        if op in _NO_VALUE_OPS and values:
            raise SelectorError(
                f"{where}.values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            )
        try:
            requirements.append(Requirement.new(key, op, values))
        except SelectorError as err:
            raise SelectorError(f"{where}: {err}") from None
    return LabelSelector.of(requirements)


# ---------------------------------------------------------------- field selectors

_FIELD_OPERATORS = ("!=", "==", "=")


def escape_field_value(value: str) -> str:
    """Escape `\\`, `,` and `=` so a value can sit in a field selector string."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(value: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise SelectorError(f"invalid escape sequence '\\{ch}' in field selector value")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise SelectorError(f"invalid field selector value: unescaped '{ch}'")
        else:
            out.append(ch)
    if escaped:
        raise SelectorError("invalid escape sequence '\\' at the end of a field selector value")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    terms: list[str] = []
    start, escaped = 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


@dataclass(frozen=True)
class FieldRequirement:
    """`field == value` (operator "=") or `field != value` (operator "!=")."""

    field: str
    operator: str
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        equal = _field_text(obj, self.field) == self.value
        return equal if self.operator == "=" else not equal

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_field_value(self.value)}"


def _field_text(obj: Mapping[str, Any], path: str) -> str:
    """The value at a dotted path as field selectors see it: missing reads as ""."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return ""
        current = current[part]
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    if isinstance(current, str):
        return current
    if isinstance(current, int | float):
        return str(current)
    return json.dumps(current, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class FieldSelector:
    """An AND of field requirements; the empty selector matches everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    def fields(self) -> list[str]:
        """The distinct field paths used, in order, so a server can refuse unsupported ones."""
        return list(dict.fromkeys(r.field for r in self.requirements))

    @property
    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


_FIELD_PATH_RE = re.compile(r"[A-Za-z0-9_\-/]+(\.[A-Za-z0-9_\-/]+)*")


def parse_field_selector(text: str) -> FieldSelector:
    """Parse `?fieldSelector=` (`metadata.name=web,status.phase!=Running`)."""
    requirements: list[FieldRequirement] = []
    for term in _split_terms(text):
        if term == "":
            continue
        found = None
        for i in range(len(term)):
            for op in _FIELD_OPERATORS:
                if term.startswith(op, i):
                    found = (term[:i], op, term[i + len(op) :])
                    break
            if found:
                break
        if found is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, raw = found
        field = field.strip()
        if not _FIELD_PATH_RE.fullmatch(field):
            raise SelectorError(f"invalid selector: '{text}'; '{field}' is not a field path")
        requirements.append(FieldRequirement(field, "!=" if op == "!=" else "=", _unescape_field_value(raw)))
    requirements.sort(key=str)
    return FieldSelector(tuple(requirements))
