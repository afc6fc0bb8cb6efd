"""Helpers the generated gRPC converters (generated/<api>/grpc_convert.py) call.

They hold no contract knowledge, so they live here, typed and linted, rather than as a
string inside codegen; the generated module keeps only the per-message functions.
"""

from __future__ import annotations

from collections.abc import Callable
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
    "to_struct",
]

T = TypeVar("T")

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


def no_input(message: Any) -> dict[str, Any]:
    """The reader of `google.protobuf.Empty` requests."""
    return {}
