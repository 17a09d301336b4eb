"""The pydantic base shared by every API type, and the small value types they use.

Field names are snake_case in Python and camelCase on the wire (`by_alias=True`),
exactly as Kubernetes spells them; a few Kubernetes names are not plain camelCase
(`podIP`, `hostIP`) and carry explicit aliases where they are declared.

Unknown fields are *kept* while parsing (`extra="allow"`) so that the API server can
follow Kubernetes' `fieldValidation`: Strict refuses them naming each one, Warn and
Ignore drop them. See `unknown_fields` and `drop_unknown_fields`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel


def _format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _format_micro_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _to_aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


# metav1.Time: second precision, always written with a `Z`. Clients may send `+00:00`.
Time = Annotated[datetime, BeforeValidator(_to_aware), PlainSerializer(_format_time, return_type=str)]
# metav1.MicroTime: used by Lease and the newer Event fields.
MicroTime = Annotated[
    datetime, BeforeValidator(_to_aware), PlainSerializer(_format_micro_time, return_type=str)
]


def _quantity_to_str(value: Any) -> Any:
    # YAML turns `cpu: 1` and `memory: 1e3` into numbers; Kubernetes accepts both.
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return format(value, "g") if isinstance(value, float) else str(value)
    return value


# A resource.Quantity kept in the form the client wrote; validation checks its syntax.
Quantity = Annotated[str, BeforeValidator(_quantity_to_str)]
# intstr.IntOrString, e.g. maxSurge: 1 or "25%", probe ports: 8080 or "http".
IntOrString = int | str


def now() -> datetime:
    """The current time at the second precision that metav1.Time keeps."""
    return datetime.now(UTC).replace(microsecond=0)


class KubeModel(BaseModel):
    """Base of every API struct: camelCase aliases, unknown fields kept for fieldValidation."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        validate_assignment=False,
        ser_json_inf_nan="constants",
    )

    def to_dict(self) -> dict[str, Any]:
        """The wire form: camelCase keys, unset optional fields omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        return cls.model_validate(data)

    def copy_deep(self) -> Self:
        """A deep copy: objects from an informer cache are read-only, copy before changing."""
        return self.model_copy(deep=True)


# A wire path as a linked list, `(parent, segment)`, spelled out only for the rare node that
# has unknown fields: building every node's path string cost more than the walk itself.
_Path = tuple[Any, str | int] | None
_LEAVES = frozenset({type(None), str, int, float, bool})


_WIRE_NAMES: dict[type, dict[str, str] | None] = {}


def _wire_names(cls: type) -> dict[str, str] | None:
    """`.{wire name}` of each field of a KubeModel class; None for any other type.

    Cached per type: `isinstance` against pydantic's ABC metaclass and the `model_fields`
    property are slow enough to dominate a walk that runs on every write."""
    try:
        return _WIRE_NAMES[cls]
    except KeyError:
        names = {name: "." + (info.alias or name) for name, info in cls.model_fields.items()} \
            if issubclass(cls, KubeModel) else None
        _WIRE_NAMES[cls] = names
        return names


def _branch(value: Any) -> bool:
    """A list or a model: something that can hold models below it."""
    return type(value) is list or _wire_names(type(value)) is not None


def _models(root: KubeModel) -> list[tuple[_Path, KubeModel]]:
    """Every model node under `root` with its wire path (see `_spell`), e.g. `spec.containers[0]`.

    An explicit stack rather than recursive generators: this runs on every write."""
    found: list[tuple[_Path, KubeModel]] = []
    stack: list[tuple[_Path, Any]] = [(None, root)]
    while stack:
        path, value = stack.pop()
        kind = type(value)
        if kind is list:
            stack.extend(((path, i), item) for i, item in enumerate(value) if _branch(item))
        elif kind is dict:
            stack.extend(((path, f"[{k}]"), item) for k, item in value.items() if _branch(item))
        elif (wire := _wire_names(kind)) is not None:
            found.append((path, value))
            # Only fields the client sent can hold unknown fields below them; walking the
            # unset ones (most of a PodSpec) would dominate the cost of a create.
            for name in value.model_fields_set:
                child = getattr(value, name, None)
                if type(child) not in _LEAVES and name in wire:
                    stack.append(((path, wire[name]), child))
    return found


def _spell(path: _Path) -> str:
    """`(((None, ".spec"), ".containers"), 0)` -> `spec.containers[0]`."""
    parts: list[str] = []
    while path is not None:
        path, segment = path
        parts.append(f"[{segment}]" if isinstance(segment, int) else segment)
    return "".join(reversed(parts)).removeprefix(".")


def unknown_fields(model: KubeModel) -> list[str]:
    """Paths of every field the client sent that the type does not declare, e.g. `spec.foo`."""
    found: list[str] = []
    for path, node in _models(model):
        if node.model_extra:
            prefix = _spell(path)
            found += [f"{prefix}.{key}" if prefix else key for key in node.model_extra]
    return sorted(found)


def drop_unknown_fields(model: KubeModel) -> None:
    """Forget undeclared fields in place (fieldValidation Warn and Ignore)."""
    for _, node in _models(model):
        if node.model_extra:
            node.model_extra.clear()
