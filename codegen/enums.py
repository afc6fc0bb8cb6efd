"""Proto3 enums ⇄ OpenAPI string enums: the naming rule both drift.py and grpc_convert.py use.

A proto enum value's REST string is its name without the enum's SCREAMING_SNAKE prefix
(`TASK_STATUS_PENDING` of `TaskStatus` → `PENDING`; `SEQUENTIAL` of `ExecutionMode` has none),
matched case-insensitively against the OpenAPI `enum` list, whose spelling REST carries. The
value 0 is "unset": it has a REST string only when the OpenAPI lists it.
"""

from __future__ import annotations

import keyword
from collections.abc import Iterable

from google.protobuf.descriptor_pb2 import DescriptorProto, EnumDescriptorProto, FileDescriptorSet

EnumMapping = dict[int, str]
"""Of one proto enum: value number → REST string (the OpenAPI's spelling); 0 only if it maps."""


def _prefix(enum_name: str, value_name: str) -> str:
    """The leading `TASK_STATUS_` of `value_name` that spells `enum_name` (TaskStatus), or ""."""
    reduced = enum_name.replace("_", "").lower()
    for end in range(1, len(value_name) + 1):
        if value_name[:end].replace("_", "").lower() == reduced:
            return value_name[:end] + "_"
    return ""


def rest_name(enum_name: str, value_name: str) -> str:
    """The REST string of one value, before matching the OpenAPI's spelling: its name unprefixed."""
    prefix = _prefix(enum_name, value_name)
    if prefix and value_name.startswith(prefix) and len(value_name) > len(prefix):
        return value_name[len(prefix) :]
    return value_name


def member_names(enum: EnumDescriptorProto) -> dict[int, str]:
    """Value number → the member name betterproto2 generates (betterproto2_compiler's rule:
    the prefix goes only when every value has it; keywords get a `_` suffix)."""
    names = [value.name for value in enum.value]
    prefix = _prefix(enum.name, names[0]) if names else ""
    if prefix and all(name.startswith(prefix) for name in names):
        names = [name[len(prefix) :] for name in names]
    members: dict[int, str] = {}
    for value, name in zip(enum.value, names, strict=True):
        if keyword.iskeyword(name):
            name = f"{name}_"
        elif not name.isidentifier():
            name = f"_{name}"
        members.setdefault(value.number, name)
    return members


def match(
    enum: EnumDescriptorProto, rest_values: Iterable[object]
) -> tuple[EnumMapping, list[str], list[str]]:
    """Pairs a proto enum with an OpenAPI `enum` list.

    Returns the mapping, the proto values (non-zero) without an OpenAPI value, and the OpenAPI
    values without a proto value.
    """
    by_folded = {str(value).lower(): str(value) for value in rest_values if value is not None}
    mapping: EnumMapping = {}
    unmatched_proto: list[str] = []
    used: set[str] = set()
    for value in enum.value:
        folded = rest_name(enum.name, value.name).lower()
        if folded in by_folded:
            mapping.setdefault(value.number, by_folded[folded])
            used.add(folded)
        elif value.number != 0:
            unmatched_proto.append(value.name)
    unmatched_rest = [spelling for folded, spelling in by_folded.items() if folded not in used]
    return mapping, unmatched_proto, unmatched_rest


def default_mapping(enum: EnumDescriptorProto) -> EnumMapping:
    """The REST strings of an enum that no OpenAPI schema pairs with: names unprefixed, 0 unset."""
    mapping: EnumMapping = {}
    for value in enum.value:
        if value.number != 0:
            mapping.setdefault(value.number, rest_name(enum.name, value.name))
    return mapping


def index_enums(descriptors: FileDescriptorSet) -> dict[str, EnumDescriptorProto]:
    """Every enum of the descriptor set by full name (`.pkg.Enum`, `.pkg.Message.Enum`)."""
    enums: dict[str, EnumDescriptorProto] = {}

    def add(prefix: str, message: DescriptorProto) -> None:
        name = f"{prefix}.{message.name}"
        for enum in message.enum_type:
            enums[f"{name}.{enum.name}"] = enum
        for nested in message.nested_type:
            add(name, nested)

    for file in descriptors.file:
        prefix = f".{file.package}" if file.package else ""
        for enum in file.enum_type:
            enums[f"{prefix}.{enum.name}"] = enum
        for message in file.message_type:
            add(prefix, message)
    return enums
