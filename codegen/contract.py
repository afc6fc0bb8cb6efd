"""Reads spec/<api>/openapi.yaml into `Operation` records that every generator step shares."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from connexion.exceptions import InvalidSpecification
from connexion.spec import Specification

from runtime.api.envelope import declared as envelope_declared
from runtime.api.envelope import envelope_data

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
RATE_CLASSES = ("submit", "tasks_read", "cluster", "other")
"""The values of an operation's `x-grey-rate-class`: the rate-limit bucket its calls count in."""
DEFAULT_RATE_CLASS = "other"


class ContractError(SystemExit):
    """Codegen stops: the OpenAPI document says something codegen cannot generate."""


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    location: str  # path | query
    schema: dict[str, Any]
    required: bool
    is_array: bool


@dataclass(frozen=True, slots=True)
class Operation:
    """One API operation as both transports and the handler layer see it."""

    operation_id: str
    method: str
    path: str
    tag: str
    summary: str
    scopes: tuple[str, ...]
    grpc: str | None  # "Service.Method" or None for REST-only operations
    parameters: tuple[Parameter, ...]
    body_schema: str | None  # component schema name of the JSON body
    body_required: bool
    success_status: int
    response_schema: str | None  # component schema name of the JSON success body
    response_media: tuple[str, ...]
    event_schema: str | None
    public: bool  # no credentials needed
    drift_allow: dict[str, str] = field(default_factory=dict)
    rate_class: str = DEFAULT_RATE_CLASS  # x-grey-rate-class: one of RATE_CLASSES

    @property
    def handler_name(self) -> str:
        return snake_case(self.operation_id)

    @property
    def input_model(self) -> str:
        return self.operation_id[0].upper() + self.operation_id[1:] + "Input"

    @property
    def streaming(self) -> bool:
        return "text/event-stream" in self.response_media


@dataclass(frozen=True, slots=True)
class Contract:
    document: dict[str, Any]
    operations: tuple[Operation, ...]
    envelope: bool = False  # x-grey-envelope: answers in `{success, data, error}` (runtime/api/envelope.py)

    @property
    def schemas(self) -> dict[str, Any]:
        return self.document["components"]["schemas"]


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _ref_name(schema: dict[str, Any] | None) -> str | None:
    if not schema or "$ref" not in schema:
        return None
    return schema["$ref"].rsplit("/", 1)[-1]


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        parts = node["$ref"].lstrip("#/").split("/")
        target: Any = document
        for part in parts:
            target = target[part]
        node = target
    return node


def _answer_schema(document: dict[str, Any], schema: dict[str, Any] | None, envelope: bool) -> str | None:
    """The component schema name of a success answer: with `x-grey-envelope`, the envelope's
    `data` when the response is spelled as the envelope (runtime/api/envelope.py)."""
    if not envelope or schema is None:
        return _ref_name(schema)
    data = envelope_data(document, schema)
    return _ref_name(schema if data is None else data)


def load_contract(path: Path) -> Contract:
    """Parses the spec after connexion has validated it, exactly as the server will load it."""
    try:
        Specification.load(path)
    except InvalidSpecification as error:
        raise SystemExit(f"{path} is not a valid OpenAPI 3.0 document:\n{error}") from None
    document = yaml.safe_load(path.read_text())
    try:
        envelope = envelope_declared(document)
    except ValueError as error:
        raise ContractError(str(error)) from None
    operations: list[Operation] = []
    problems: list[str] = []
    for route, item in document["paths"].items():
        shared = item.get("parameters", [])
        for method in HTTP_METHODS:
            raw = item.get(method)
            if raw is None:
                continue
            params = tuple(
                Parameter(
                    name=p["name"],
                    location=p["in"],
                    schema=p["schema"],
                    required=bool(p.get("required", False)),
                    is_array=p["schema"].get("type") == "array",
                )
                for p in (_resolve(document, q) for q in [*shared, *raw.get("parameters", [])])
            )
            body = raw.get("requestBody")
            body_schema = body_required = None
            if body:
                body = _resolve(document, body)
                body_schema = _ref_name(body["content"]["application/json"]["schema"])
                body_required = bool(body.get("required", False))
            success = next(code for code in raw["responses"] if code.startswith("2"))
            response = _resolve(document, raw["responses"][success])
            content = response.get("content", {})
            security = raw.get("security", document.get("security", []))
            grpc = raw.get("x-grpc")
            json_schema = content.get("application/json", {}).get("schema")
            response_schema = _answer_schema(document, json_schema, envelope)
            if envelope and json_schema is not None and response_schema is None:
                problems.append(
                    f"{raw['operationId']}: its {success} answer is not a $ref to a component "
                    "schema (with x-grey-envelope: the envelope's `data`, or the answer alone)"
                )
            rate_class = raw.get("x-grey-rate-class", DEFAULT_RATE_CLASS)
            if rate_class not in RATE_CLASSES:
                problems.append(
                    f"{raw['operationId']}: x-grey-rate-class is {rate_class!r}; "
                    f"expected one of {', '.join(RATE_CLASSES)}"
                )
            operations.append(
                Operation(
                    operation_id=raw["operationId"],
                    method=method,
                    path=route,
                    tag=raw["tags"][0],
                    summary=raw.get("summary", ""),
                    scopes=tuple(raw.get("x-grey-scopes", [])),
                    grpc=None if grpc in (None, "none") else grpc,
                    parameters=params,
                    body_schema=body_schema,
                    body_required=bool(body_required),
                    success_status=int(success),
                    response_schema=response_schema,
                    response_media=tuple(content),
                    event_schema=raw.get("x-grey-event-schema"),
                    public=security == [],
                    drift_allow=dict(raw.get("x-grey-drift-allow", {})),
                    rate_class=str(rate_class),
                )
            )
    if problems:
        raise ContractError("\n  ".join(["the OpenAPI cannot be generated:", *problems]))
    return Contract(document=document, operations=tuple(operations), envelope=envelope)


def input_schema(contract: Contract, operation: Operation) -> dict[str, Any]:
    """One flat object schema per operation: path and query parameters plus body fields.

    Both transports validate into it, so REST and gRPC share one request model.
    """
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in operation.parameters:
        properties[param.name] = param.schema
        if param.required:
            required.append(param.name)
    if operation.body_schema:
        body = contract.schemas[operation.body_schema]
        properties.update(body.get("properties", {}))
        if operation.body_required:
            required.extend(body.get("required", []))
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "description": f"Input of `{operation.operation_id}`: {operation.summary}",
    }
    if required:
        schema["required"] = required
    return schema
