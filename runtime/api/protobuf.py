"""Helpers the generated gRPC converters (generated/<api>/grpc_convert.py) call.

They hold no contract knowledge, so they live here, typed and linted, rather than as a
string inside codegen; the generated module keeps only the per-message functions.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = [
    "Converters",
    "ToInput",
    "ToMessage",
    "convert_optional",
    "get_field",
    "no_input",
    "or_default",
    "to_enum",
    "to_enums",
    "to_struct",
]

T = TypeVar("T")
E = TypeVar("E")
U = TypeVar("U")

ToInput = Callable[[Any], dict[str, Any]]
"""Request message → the input dict a REST body would give."""
ToMessage = Callable[[Any], Any]
"""Response model (or dict) → reply message."""
Converters = dict[str, tuple[ToInput, ToMessage]]
"""Per `Service.Method`: its request reader and its reply writer."""


def get_field(source: Any, name: str) -> Any:
    """A field of a pydantic model, plain object or dict; `None` when absent."""
    return source.get(name) if isinstance(source, dict) else getattr(source, name, None)


def or_default(value: T | None, default: T) -> T:
    """The proto3 default for an unset scalar."""
    return default if value is None else value


def convert_optional(convert: Callable[[Any], T], value: Any) -> T | None:
    """`convert(value)`, except that an absent sub-message stays absent."""
    return None if value is None else convert(value)


def to_struct(from_dict: Callable[[dict[str, Any]], T], value: Any) -> T | None:
    """A `google.protobuf.Struct` (made by `from_dict`) from a model or a dict."""
    if value is None:
        return None
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    return from_dict(value)


def to_enum(table: Mapping[str, E], value: Any, unset: U) -> E | U:
    """The enum member of a REST string (from a model or a dict); `unset` when it is absent:
    the enum's 0, or None for a proto3 `optional` field."""
    if value is None:
        return unset
    try:
        return table[value]
    except (KeyError, TypeError):
        return _member(table, value)


def to_enums(table: Mapping[str, E], values: Iterable[Any] | None) -> list[E]:
    """The members of a repeated enum field; absent is empty."""
    if not values:
        return []
    try:
        return [table[value] for value in values]
    except (KeyError, TypeError):
        return [_member(table, value) for value in values]


def _member(table: Mapping[str, E], value: Any) -> E:
    """The slow path: a Python enum whose value is the REST string, else a clear error."""
    if isinstance(value, enum.Enum) and isinstance(value.value, str) and value.value in table:
        return table[value.value]
    if isinstance(value, str) and value in table:
        return table[value]
    raise ValueError(f"{value!r} is not one of the REST values {', '.join(map(repr, table))}")


def no_input(message: Any) -> dict[str, Any]:
    """The reader of `google.protobuf.Empty` requests."""
    return {}
