"""Drift check: the proto and the OpenAPI must describe the same operations and fields.

Each OpenAPI operation names its RPC in `x-grpc`. For that pair the flat input schema
(parameters + body) is compared with the request message and the success schema with the
response message, field by field and by kind, into sub-messages and the items of repeated
fields. A proto enum pairs with an OpenAPI string `enum` whose values correspond (codegen/enums.py
says how); a proto `string` may carry an OpenAPI enum too. Differences the contract means to
keep are listed under `x-grey-drift-allow` on the operation.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor_pb2 import DescriptorProto, FieldDescriptorProto, FileDescriptorSet

from codegen.contract import Contract, Operation, input_schema
from codegen.enums import EnumMapping, index_enums, match

F = FieldDescriptorProto
STRUCT = ".google.protobuf.Struct"
TIMESTAMP = ".google.protobuf.Timestamp"
EMPTY = ".google.protobuf.Empty"
INTEGERS = {F.TYPE_INT32, F.TYPE_INT64, F.TYPE_UINT32, F.TYPE_UINT64, F.TYPE_SINT32, F.TYPE_SINT64}


class DriftError(SystemExit):
    """Codegen stops: the two contracts disagree."""


class _Index:
    def __init__(self, descriptors: FileDescriptorSet) -> None:
        self.messages: dict[str, DescriptorProto] = {}
        self.methods: dict[str, tuple[str, str, bool]] = {}
        self.enums = index_enums(descriptors)
        # What the pairs checked so far say of each enum: its mapping and where it was paired.
        self.enum_pairs: dict[str, tuple[EnumMapping, str]] = {}
        for file in descriptors.file:
            prefix = f".{file.package}" if file.package else ""
            for message in file.message_type:
                self._add(prefix, message)
            for service in file.service:
                for method in service.method:
                    self.methods[f"{service.name}.{method.name}"] = (
                        method.input_type,
                        method.output_type,
                        method.server_streaming,
                    )

    def _add(self, prefix: str, message: DescriptorProto) -> None:
        name = f"{prefix}.{message.name}"
        self.messages[name] = message
        for nested in message.nested_type:
            self._add(name, nested)


def _resolve(contract: Contract, schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = contract.schemas[schema["$ref"].rsplit("/", 1)[-1]]
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _resolve(contract, schema["allOf"][0])
    return schema


def _kind_of_schema(contract: Contract, schema: dict[str, Any]) -> str:
    schema = _resolve(contract, schema)
    kind = schema.get("type")
    if kind == "string":
        return "timestamp" if schema.get("format") == "date-time" else "string"
    if kind == "integer":
        return "integer"
    if kind == "number":
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "array":
        return "array"
    if "properties" in schema and not schema.get("additionalProperties"):
        return "message"
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and extra.get("type") in ("string", "integer", "boolean"):
        return "map"
    return "struct"


def _kind_of_field(index: _Index, field: FieldDescriptorProto) -> str:
    if field.type == F.TYPE_MESSAGE:
        message = index.messages.get(field.type_name)
        if message is not None and message.options.map_entry:
            return "map"
    if field.label == F.LABEL_REPEATED:
        return "array"
    return _kind_of_element(field)


def _kind_of_element(field: FieldDescriptorProto) -> str:
    """The kind of one value of the field (of each item, for a repeated one)."""
    if field.type == F.TYPE_MESSAGE:
        return {STRUCT: "struct", TIMESTAMP: "timestamp"}.get(field.type_name, "message")
    if field.type == F.TYPE_ENUM:
        return "enum"
    if field.type in INTEGERS:
        return "integer"
    if field.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return "number"
    if field.type == F.TYPE_BOOL:
        return "boolean"
    if field.type == F.TYPE_BYTES:
        return "bytes"
    return "string"


def _compare(
    contract: Contract,
    index: _Index,
    where: str,
    schema: dict[str, Any],
    message_name: str,
    allowed: dict[str, str],
) -> list[str]:
    schema = _resolve(contract, schema)
    message = index.messages[message_name]
    fields = {f.name: f for f in message.field}
    properties = schema.get("properties", {})
    problems: list[str] = []
    for name in sorted(set(properties) | set(fields)):
        if name in allowed:
            continue
        if name not in fields:
            problems.append(f"{where}: field '{name}' is in the OpenAPI but not in {message_name}")
            continue
        if name not in properties:
            problems.append(f"{where}: field '{name}' is in {message_name} but not in the OpenAPI")
            continue
        field = fields[name]
        rest_kind = _kind_of_schema(contract, properties[name])
        grpc_kind = _kind_of_field(index, field)
        if grpc_kind == "enum":
            problems += _compare_enum(contract, index, f"{where}: field '{name}'", properties[name], field)
        elif rest_kind != grpc_kind:
            problems.append(
                f"{where}: field '{name}' is {rest_kind} in the OpenAPI but {grpc_kind} in {message_name}"
            )
        elif rest_kind == "message":
            problems += _compare(
                contract, index, f"{where}.{name}", properties[name], field.type_name, allowed
            )
        elif rest_kind == "array":
            problems += _compare_items(
                contract, index, where, name, properties[name], message_name, field, allowed
            )
    return problems


def _compare_items(
    contract: Contract,
    index: _Index,
    where: str,
    name: str,
    schema: dict[str, Any],
    message_name: str,
    field: FieldDescriptorProto,
    allowed: dict[str, str],
) -> list[str]:
    """The items of an OpenAPI array against the values of a repeated field."""
    items = _resolve(contract, schema).get("items")
    if not isinstance(items, dict):
        return []
    grpc_kind = _kind_of_element(field)
    if grpc_kind == "enum":
        return _compare_enum(contract, index, f"{where}: items of field '{name}'", items, field)
    rest_kind = _kind_of_schema(contract, items)
    if rest_kind != grpc_kind:
        return [
            f"{where}: field '{name}' is an array of {rest_kind} in the OpenAPI "
            f"but of {grpc_kind} in {message_name}"
        ]
    if rest_kind == "message":
        return _compare(contract, index, f"{where}.{name}[]", items, field.type_name, allowed)
    return []


def _compare_enum(
    contract: Contract, index: _Index, where: str, schema: dict[str, Any], field: FieldDescriptorProto
) -> list[str]:
    """A proto enum field against its OpenAPI schema: a string `enum` with corresponding values."""
    enum = index.enums.get(field.type_name)
    if enum is None:
        return [f"{where}: enum {field.type_name} is not in the proto files"]
    resolved = _resolve(contract, schema)
    label = f"proto enum {enum.name}"
    if resolved.get("type") != "string" or not isinstance(resolved.get("enum"), list):
        rest_kind = _kind_of_schema(contract, schema)
        return [f"{where} is a {label} but {rest_kind} without an `enum` list in the OpenAPI"]
    mapping, proto_only, rest_only = match(enum, resolved["enum"])
    problems: list[str] = []
    if proto_only:
        problems.append(f"{where}: {label} values missing from the OpenAPI enum: {', '.join(proto_only)}")
    if rest_only:
        problems.append(f"{where}: OpenAPI enum values missing from the {label}: {', '.join(rest_only)}")
    if problems:
        return problems
    earlier = index.enum_pairs.setdefault(field.type_name, (mapping, where))
    if earlier[0] != mapping:
        return [
            f"{where}: {label} is spelled differently here ({_spell(mapping)}) than at "
            f"{earlier[1]} ({_spell(earlier[0])}); one proto enum needs one REST spelling"
        ]
    return []


def _spell(mapping: EnumMapping) -> str:
    return ", ".join(f"{number}={value}" for number, value in sorted(mapping.items()))


def check_drift(contract: Contract, descriptors: FileDescriptorSet) -> dict[str, EnumMapping]:
    """Raise DriftError naming every operation and field on which REST and gRPC disagree.

    Returns, per proto enum that an OpenAPI enum pairs with (by full name, `.pkg.Enum`), its
    value number → REST string mapping: what the generated converters translate with.
    """
    index = _Index(descriptors)
    problems: list[str] = []
    served: set[str] = set()
    for operation in contract.operations:
        if operation.grpc is None:
            continue
        served.add(operation.grpc)
        if operation.grpc not in index.methods:
            problems.append(f"{operation.operation_id}: x-grpc names {operation.grpc}, not in the proto")
            continue
        request, response, streaming = index.methods[operation.grpc]
        problems += _check_operation(contract, index, operation, request, response, streaming)
    for method in sorted(set(index.methods) - served):
        problems.append(f"{method}: RPC in the proto has no OpenAPI operation (set x-grpc on one)")
    if problems:
        raise DriftError("proto and OpenAPI disagree:\n  " + "\n  ".join(problems))
    return {name: mapping for name, (mapping, _) in sorted(index.enum_pairs.items())}


def _check_operation(
    contract: Contract,
    index: _Index,
    operation: Operation,
    request: str,
    response: str,
    streaming: bool,
) -> list[str]:
    where = f"{operation.operation_id} ({operation.grpc})"
    allowed = operation.drift_allow
    problems: list[str] = []
    flat = input_schema(contract, operation)
    if request == EMPTY:
        if flat["properties"]:
            problems.append(f"{where}: request is Empty in the proto but the OpenAPI has inputs")
    else:
        problems += _compare(contract, index, f"{where} request", flat, request, allowed)
    if streaming != operation.streaming:
        problems.append(f"{where}: streaming on one side only")
    body = operation.event_schema if operation.streaming else operation.response_schema
    if body is None:
        problems.append(f"{where}: no JSON response schema to compare with {response}")
    else:
        schema = {"$ref": f"#/components/schemas/{body}"}
        problems += _compare(contract, index, f"{where} response", schema, response, allowed)
    return problems
