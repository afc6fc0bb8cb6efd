"""Typed converters between betterproto2 messages and the shared models, one per message.

betterproto2's generic `to_dict`/`from_dict` walk field metadata on every call (hundreds of
microseconds per request); these generated functions read and build the attributes
directly, with the same ProtoJSON meaning: unset optional and default-valued fields are
left out of the input, exactly as REST leaves out absent JSON keys.

Proto enums go through per-enum tables (`<ENUM>_TO_REST`, `<ENUM>_FROM_REST`) between the
betterproto2 members and the REST strings drift.py paired them with (codegen/enums.py): a
value without a REST string (0, unless the OpenAPI lists it) leaves the field out of the
input, and an absent REST value is the enum's 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from google.protobuf.descriptor_pb2 import (
    DescriptorProto,
    EnumDescriptorProto,
    FieldDescriptorProto,
    FileDescriptorSet,
)

from codegen.enums import EnumMapping, default_mapping, index_enums, member_names

F = FieldDescriptorProto
STRUCT = ".google.protobuf.Struct"
TIMESTAMP = ".google.protobuf.Timestamp"
EMPTY = ".google.protobuf.Empty"


@dataclass(frozen=True, slots=True)
class _Messages:
    package: str
    by_name: dict[str, DescriptorProto]
    enums: dict[str, EnumDescriptorProto] = field(default_factory=dict)
    used_enums: set[str] = field(default_factory=set)

    def python_name(self, type_name: str) -> str:
        return type_name[len(self.package) + 2 :].replace(".", "")

    def is_map(self, field: FieldDescriptorProto) -> bool:
        message = self.by_name.get(field.type_name)
        return message is not None and message.options.map_entry

    def enum_table(self, field: FieldDescriptorProto, direction: str) -> str:
        """The generated table that translates this enum field (`TO_REST` or `FROM_REST`)."""
        self.used_enums.add(field.type_name)
        return f"{_snake(self.python_name(field.type_name)).upper()}_{direction}"

    def zero_member(self, type_name: str) -> str:
        return f"pb.{self.python_name(type_name)}.{member_names(self.enums[type_name])[0]}"


def _index(descriptors: FileDescriptorSet) -> _Messages:
    by_name: dict[str, DescriptorProto] = {}
    package = ""

    def add(prefix: str, message: DescriptorProto) -> None:
        name = f"{prefix}.{message.name}"
        by_name[name] = message
        for nested in message.nested_type:
            add(name, nested)

    for file in descriptors.file:
        if file.service:
            package = file.package
        for message in file.message_type:
            add(f".{file.package}", message)
    return _Messages(package, by_name, index_enums(descriptors))


def _snake(name: str) -> str:
    out = []
    for i, char in enumerate(name):
        if char.isupper() and i:
            out.append("_")
        out.append(char.lower())
    return "".join(out)


def _is_message(field: FieldDescriptorProto) -> bool:
    return field.type == F.TYPE_MESSAGE


def _is_enum(field: FieldDescriptorProto) -> bool:
    return field.type == F.TYPE_ENUM


def _input_line(messages: _Messages, field: FieldDescriptorProto, wanted: set[str]) -> str:
    name = field.name
    value = f"message.{name}"
    if _is_message(field) and messages.is_map(field):
        return f"    if {value}:\n        out[{name!r}] = dict({value})"
    if field.label == F.LABEL_REPEATED:
        if _is_message(field):
            wanted.add(field.type_name)
            converter = f"{_snake(messages.python_name(field.type_name))}_to_dict"
            return f"    if {value}:\n        out[{name!r}] = [{converter}(item) for item in {value}]"
        if _is_enum(field):
            table = messages.enum_table(field, "TO_REST")
            return (
                f"    if {value}:\n"
                f"        out[{name!r}] = [{table}[item] for item in {value} if item in {table}]"
            )
        return f"    if {value}:\n        out[{name!r}] = list({value})"
    if _is_enum(field):
        # One lookup: unset (None), 0 without a REST string and unknown values leave it out.
        table = messages.enum_table(field, "TO_REST")
        return f"    if (value := {table}.get({value})) is not None:\n        out[{name!r}] = value"
    if _is_message(field):
        if field.type_name == STRUCT:
            converted = f"{value}.to_dict()"
        elif field.type_name == TIMESTAMP:
            converted = value
        else:
            wanted.add(field.type_name)
            converted = f"{_snake(messages.python_name(field.type_name))}_to_dict({value})"
        return f"    if {value} is not None:\n        out[{name!r}] = {converted}"
    if field.proto3_optional:
        return f"    if {value} is not None:\n        out[{name!r}] = {value}"
    return f"    if {value}:\n        out[{name!r}] = {value}"


def _output_arg(messages: _Messages, field: FieldDescriptorProto, wanted: set[str]) -> str:
    name = field.name
    value = f"get_field(source, {name!r})"
    if _is_message(field) and messages.is_map(field):
        return f"{name}=dict({value} or {{}})"
    if field.label == F.LABEL_REPEATED:
        if _is_message(field):
            wanted.add(field.type_name)
            converter = f"{_snake(messages.python_name(field.type_name))}_from"
            return f"{name}=[{converter}(item) for item in {value} or ()]"
        if _is_enum(field):
            return f"{name}=to_enums({messages.enum_table(field, 'FROM_REST')}, {value})"
        return f"{name}=list({value} or ())"
    if _is_enum(field):
        unset = "None" if field.proto3_optional else messages.zero_member(field.type_name)
        return f"{name}=to_enum({messages.enum_table(field, 'FROM_REST')}, {value}, {unset})"
    if _is_message(field):
        if field.type_name == STRUCT:
            return f"{name}=to_struct(Struct.from_dict, {value})"
        if field.type_name == TIMESTAMP:
            return f"{name}={value}"
        wanted.add(field.type_name)
        converter = f"{_snake(messages.python_name(field.type_name))}_from"
        return f"{name}=convert_optional({converter}, {value})"
    if field.proto3_optional:
        return f"{name}={value}"
    default = {F.TYPE_STRING: '""', F.TYPE_BOOL: "False", F.TYPE_BYTES: 'b""'}.get(field.type, "0")
    return f"{name}=or_default({value}, {default})"


def _enum_tables(messages: _Messages, paired: Mapping[str, EnumMapping]) -> str:
    """Both tables of every enum a converter uses, in the spelling the OpenAPI pairs it with."""
    blocks: list[str] = []
    for type_name in sorted(messages.used_enums):
        enum = messages.enums[type_name]
        python = f"pb.{messages.python_name(type_name)}"
        members = member_names(enum)
        mapping = paired.get(type_name) or default_mapping(enum)
        stem = _snake(messages.python_name(type_name)).upper()
        pairs = [(f"{python}.{members[number]}", text) for number, text in sorted(mapping.items())]
        to_rest = "".join(f"\n    {member}: {text!r}," for member, text in pairs)
        from_rest = "".join(f"\n    {text!r}: {member}," for member, text in pairs)
        blocks.append(
            f"{stem}_TO_REST: dict[{python}, str] = {{{to_rest}\n}}\n"
            f'"""{enum.name} member → REST string; a member not here leaves the field out of the input."""\n'
            f"{stem}_FROM_REST: dict[str, {python}] = {{{from_rest}\n}}\n"
            f'"""REST string → {enum.name} member; an absent value is the enum\'s 0."""\n'
        )
    return "\n\n".join(blocks)


def render_converters(
    descriptors: FileDescriptorSet,
    header: str,
    api: str,
    enums: Mapping[str, EnumMapping] | None = None,
) -> str:
    """generated/<api>/grpc_convert.py; `enums` is what check_drift paired each proto enum with."""
    messages = _index(descriptors)
    inputs: set[str] = set()
    outputs: set[str] = set()
    for file in descriptors.file:
        for service in file.service:
            for method in service.method:
                if method.input_type != EMPTY:
                    inputs.add(method.input_type)
                outputs.add(method.output_type)
    functions: list[str] = []
    done: set[tuple[str, str]] = set()
    pending = [("in", name) for name in sorted(inputs)] + [("out", name) for name in sorted(outputs)]
    while pending:
        direction, type_name = pending.pop(0)
        if (direction, type_name) in done:
            continue
        done.add((direction, type_name))
        message = messages.by_name[type_name]
        python = messages.python_name(type_name)
        wanted: set[str] = set()
        if direction == "in":
            body = "\n".join(_input_line(messages, f, wanted) for f in message.field)
            functions.append(
                f"def {_snake(python)}_to_dict(message: pb.{python}) -> dict[str, Any]:\n"
                f"    out: dict[str, Any] = {{}}\n{body}\n    return out\n"
            )
        else:
            args = ",\n        ".join(_output_arg(messages, f, wanted) for f in message.field)
            functions.append(
                f"def {_snake(python)}_from(source: Any) -> pb.{python}:\n"
                f"    return pb.{python}(\n        {args},\n    )\n"
            )
        pending += [(direction, name) for name in sorted(wanted)]
    readers = {
        f"{s.name}.{m.name}": (
            None if m.input_type == EMPTY else f"{_snake(messages.python_name(m.input_type))}_to_dict",
            f"{_snake(messages.python_name(m.output_type))}_from",
        )
        for file in descriptors.file
        for s in file.service
        for m in s.method
    }
    table = "\n".join(
        f'    "{rpc}": ({reader or "no_input"}, {writer}),'
        for rpc, (reader, writer) in sorted(readers.items())
    )
    tables = _enum_tables(messages, enums or {})
    code = "".join(functions)
    enum_helpers = "".join(f"    {name},\n" for name in ("to_enum", "to_enums") if f"{name}(" in code)
    # Only a proto that imports google/protobuf/struct.proto has the Struct module generated.
    struct = f"from generated.{api}.grpc.google.protobuf import Struct\n" if "(Struct." in code else ""
    tables = f"\n\n{tables}" if tables else ""
    return f'''{header}
"""Converters between the gRPC messages and the shared models, per message (see codegen)."""

from typing import Any

import generated.{api}.grpc.{messages.package} as pb
{struct}from runtime.api.protobuf import (
    Converters,
    convert_optional,
    get_field,
    no_input,
    or_default,
{enum_helpers}    to_struct,
){tables}

{chr(10).join(chr(10) + f for f in functions)}

CONVERTERS: Converters = {{
{table}
}}
"""Per `Service.Method`: (request message → input dict, response model → reply message)."""
'''
