"""Request validation against the spec, compiled per operation at start-up.

A drop-in for connexion's RequestValidationMiddleware (same place in the stack, same
checks: parameters, content type, body schema), but every validator is built once. The
parsed parameters and body are left in the scope so the endpoint does not parse twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import jsonschema_rs
from connexion.middleware.abstract import ROUTING_CONTEXT
from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
)
from connexion.operations import AbstractOperation
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.api.errors import ApiError
from runtime.gateway.input_limits import MAX_DEPTH, input_problem, json_input_problem
from runtime.gateway.rest.schemas import compile_schema, first_error

PARAMS_KEY = "grey.params"
BODY_KEY = "grey.body"


def _boolean(value: str) -> Any:
    lowered = value.lower()
    return {"true": True, "false": False}.get(lowered, value)


def _number(kind: type) -> Callable[[str], Any]:
    def convert(value: str) -> Any:
        try:
            return kind(value)
        except ValueError:
            return value  # left as text: the schema then names the expected type

    return convert


_COERCE: dict[str, Callable[[str], Any]] = {
    "integer": _number(int),
    "number": _number(float),
    "boolean": _boolean,
}


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    location: str
    required: bool
    is_array: bool
    coerce: Callable[[str], Any] | None
    validator: jsonschema_rs.Draft4Validator


#: OpenAPI extension (top level, or on an operation to override it): refuse query parameters
#: the operation does not declare, so a client's typo or unsupported filter is a 400, not
#: silently ignored (CloudAI's contract). Absent: they are ignored, as connexion does.
STRICT_QUERY = "x-grey-strict-query"


def strict_query(document: Any, operation: Any) -> bool:
    """Whether `operation` (its OpenAPI object) refuses undeclared query parameters."""
    value = operation.get(STRICT_QUERY, document.get(STRICT_QUERY, False))
    return value is True


class CompiledValidation:
    def __init__(self, next_app: ASGIApp, operation: AbstractOperation, strict: bool = False) -> None:
        self.next_app = next_app
        self.params = tuple(self._param(p) for p in operation.parameters)
        self.strict = strict
        self.query_names = frozenset(p.name for p in self.params if p.location == "query")
        self.has_body = bool(operation.request_body)
        self.body_required = bool(operation.request_body.get("required", False))
        self.consumes = tuple(c.lower() for c in operation.consumes) if self.has_body else ()
        self.body_validator = (
            compile_schema(operation.body_schema("application/json")) if self.has_body else None
        )

    @staticmethod
    def _param(spec: dict[str, Any]) -> _Param:
        schema = spec.get("schema", {})
        is_array = schema.get("type") == "array"
        item_type = (schema.get("items", {}) if is_array else schema).get("type", "string")
        return _Param(
            name=spec["name"],
            location=spec["in"],
            required=bool(spec.get("required", False)),
            is_array=is_array,
            coerce=_COERCE.get(item_type),
            validator=compile_schema(schema),
        )

    def _validate_params(self, scope: Scope) -> dict[str, Any]:
        query_string = scope["query_string"]
        query = parse_qs(query_string.decode("latin-1"), keep_blank_values=True) if query_string else {}
        path = scope.get("path_params", {})
        if self.strict:
            unknown = sorted(name for name in query if name not in self.query_names)
            if unknown:
                known = ", ".join(sorted(self.query_names)) or "none"
                raise ApiError(
                    "invalid_parameter",
                    f"Unknown query parameter '{unknown[0]}'; this operation takes: {known}",
                    {"parameter": unknown[0], "unknown": unknown[:20], "allowed": sorted(self.query_names)},
                )
        values: dict[str, Any] = {}
        for param in self.params:
            if param.location == "path":
                raw: Any = path.get(param.name)
            elif param.location == "query":
                found = query.get(param.name)
                raw = None if found is None else found if param.is_array else found[-1]
            else:
                continue
            if raw is None:
                if param.required:
                    raise ApiError(
                        "invalid_parameter",
                        f"Missing {param.location} parameter '{param.name}'",
                        {"parameter": param.name},
                    )
                continue
            if param.coerce is not None:
                raw = [param.coerce(v) for v in raw] if param.is_array else param.coerce(raw)
            hostile = input_problem(raw, param.name)
            if hostile is not None:
                raise ApiError(
                    "invalid_parameter",
                    f"{param.location} parameter '{param.name}' {hostile[1]}",
                    {"parameter": param.name},
                )
            problem = first_error(param.validator, raw)
            if problem is not None:
                raise ApiError(
                    "invalid_parameter",
                    f"{param.location} parameter '{param.name}': {problem[1]}",
                    {"parameter": param.name},
                )
            values[param.name] = raw
        return values

    async def _read_body(self, receive: Receive) -> bytes:
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        return b"".join(chunks)

    def _check_media_type(self, scope: Scope) -> None:
        content_type = ""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1").split(";")[0].strip().lower()
        if content_type not in self.consumes:
            raise ApiError(
                "unsupported_media_type",
                f"Content-Type must be {' or '.join(self.consumes)}, not {content_type or 'missing'}",
            )

    def _parse_body(self, raw: bytes) -> Any:
        if not raw.strip():
            if self.body_required:
                raise ApiError("invalid_payload", "A JSON request body is required")
            return None
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ApiError("bad_request", f"Malformed JSON body: {error}") from None
        except RecursionError:
            raise ApiError("bad_request", f"JSON body nested deeper than {MAX_DEPTH} levels") from None
        hostile = json_input_problem(raw, body)
        if hostile is not None:
            field, reason = hostile
            raise ApiError("invalid_payload", f"{field or 'body'} {reason}", {"field": field})
        assert self.body_validator is not None
        problem = first_error(self.body_validator, body)
        if problem is not None:
            field, message = problem
            raise ApiError("invalid_payload", message, {"field": field} if field else {})
        return body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[PARAMS_KEY] = self._validate_params(scope)
        if self.has_body:
            raw = await self._read_body(receive)
            if raw.strip():
                self._check_media_type(scope)
            scope[BODY_KEY] = self._parse_body(raw)
            receive = _replay(raw, receive)
        await self.next_app(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class CompiledValidationAPI(RequestValidationAPI):
    def make_operation(self, operation: AbstractOperation) -> CompiledValidation:
        document = self.specification.raw
        raw = self.specification.get_operation(operation.path, operation.method)
        return CompiledValidation(self.next_app, operation, strict_query(document, raw))


class CompiledValidationMiddleware(RequestValidationMiddleware):
    """Finds the operation by id alone.

    connexion's lookup also keys on the API base path it derives from the URL, which differs
    for some odd paths (e.g. `/v1/tasks/%0A`) and then silently skips validation.
    """

    api_cls = CompiledValidationAPI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            operation_id = scope.get("extensions", {}).get(ROUTING_CONTEXT, {}).get("operation_id")
            for apis in self.apis.values():
                for api in apis:
                    operation = api.operations.get(operation_id)
                    if operation is not None:
                        await operation(scope, receive, send)
                        return
        await self.app(scope, receive, send)
