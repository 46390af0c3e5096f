"""Walking the settings models by key: which field a key names, which keys a table allows.

Error messages need it (the bounds of a number, the choices of a field, whether a value
is a secret, the known keys next to a misspelt one), and so do the environment
overrides (which part of ``GRIDBOT_A__B`` is a field) and the generated reference.
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

Part = str | int
#: how a list item or a table's own key is named in a location, as pydantic names it
KEY = "[key]"


@dataclass(frozen=True)
class Node:
    """The type found at a location, and the field that declared it (none for the items
    of a list or the values of a map)."""

    annotation: Any
    field: FieldInfo | None = None

    def step(self, part: Part) -> Node | None:
        """The node one key (or list index) further down, if the models know it."""
        for member in members(self.annotation):
            if isinstance(member, type) and issubclass(member, BaseModel):
                if isinstance(part, str) and (field := field_by_key(member, part)) is not None:
                    return Node(field.annotation, field)
            elif (origin := get_origin(member)) in (list, tuple, Sequence) and \
                    isinstance(part, int):
                return Node(get_args(member)[0])
            elif origin in (dict, Mapping):
                key_type, value_type = get_args(member)
                return Node(key_type if part == KEY else value_type)
        return None

    @property
    def model(self) -> type[BaseModel] | None:
        """The model of a table found here."""
        for member in members(self.annotation):
            if isinstance(member, type) and issubclass(member, BaseModel):
                return member
        return None

    @property
    def is_map(self) -> bool:
        """A table whose keys are data (micro-grid codes, service names), not fields."""
        return any(get_origin(m) in (dict, Mapping) for m in members(self.annotation))


def at(root: type[BaseModel], loc: Sequence[Part]) -> Node | None:
    node: Node | None = Node(root)
    for part in loc:
        if node is None:
            return None
        node = node.step(part)
    return node


def unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def members(annotation: Any) -> list[Any]:
    """The types a value may have here: a union's members, ``None`` left out."""
    annotation = unwrap(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        return [unwrap(a) for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def field_by_key(model: type[BaseModel], key: str) -> FieldInfo | None:
    for name, field in model.model_fields.items():
        if (field.alias or name) == key:
            return field
    return None


def keys(model: type[BaseModel]) -> list[str]:
    """The keys a table of this model allows, in declaration order."""
    return [field.alias or name for name, field in model.model_fields.items()]


def fields(model: type[BaseModel]) -> Iterator[tuple[str, FieldInfo]]:
    for name, field in model.model_fields.items():
        yield field.alias or name, field


def is_secret(annotation: Any) -> bool:
    """Whether values here are secrets (never shown in a message)."""
    for member in members(annotation):
        if member is SecretStr:
            return True
        if get_origin(member) in (dict, Mapping) and is_secret(get_args(member)[1]):
            return True
    return False


def is_text(annotation: Any) -> bool:
    """Whether the field holds text as such (so a value from the environment is not read
    as a TOML number, boolean or list first)."""
    found = members(annotation)
    return bool(found) and all(
        m in (str, SecretStr) or (get_origin(m) is Literal and all(
            isinstance(a, str) for a in get_args(m)))
        for m in found)


def choices(annotation: Any) -> tuple[str, ...]:
    """The values a ``Literal`` field allows."""
    for member in members(annotation):
        if get_origin(member) is Literal:
            return tuple(str(a) for a in get_args(member))
    return ()


def bounds(field: FieldInfo | None) -> tuple[int | None, int | None]:
    """A number field's lowest and highest value (``Field(ge=…, le=…)``); every bound in
    the configuration is a whole number."""
    lo: int | None = None
    hi: int | None = None
    for item in field.metadata if field is not None else ():
        if isinstance(item, annotated_types.Ge) and isinstance(item.ge, int):
            lo = item.ge
        elif isinstance(item, annotated_types.Le) and isinstance(item.le, int):
            hi = item.le
    return lo, hi
