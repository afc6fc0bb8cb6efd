"""Drift check: the proto and the OpenAPI must describe the same operations and fields.

Each OpenAPI operation names its RPC in `x-grpc`. For that pair the flat input schema
(parameters + body) is compared with the request message and the success schema with the
response message, field by field and by kind. Differences the contract means to keep are
listed under `x-grey-drift-allow` on the operation.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor_pb2 import DescriptorProto, FieldDescriptorProto, FileDescriptorSet

from codegen.contract import Contract, Operation, input_schema

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
        return {STRUCT: "struct", TIMESTAMP: "timestamp"}.get(field.type_name, "message")
    if field.label == F.LABEL_REPEATED:
        return "array"
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
        rest_kind = _kind_of_schema(contract, properties[name])
        grpc_kind = _kind_of_field(index, fields[name])
        if rest_kind != grpc_kind:
            problems.append(
                f"{where}: field '{name}' is {rest_kind} in the OpenAPI but {grpc_kind} in {message_name}"
            )
        elif rest_kind == "message":
            problems += _compare(
                contract, index, f"{where}.{name}", properties[name], fields[name].type_name, allowed
            )
    return problems


def check_drift(contract: Contract, descriptors: FileDescriptorSet) -> None:
    """Raise DriftError naming every operation and field on which REST and gRPC disagree."""
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
