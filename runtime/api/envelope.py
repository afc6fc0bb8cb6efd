"""The `{success, data, error}` envelope some APIs answer in (`x-grey-envelope: true`).

Handlers return the plain answer and raise `ApiError`s; the REST layer wraps both, and the
generated client unwraps them. A contract may spell a success response either way:

- explicitly, as the envelope: a schema declaring `success` whose `data` is the answer
  (`allOf: [{$ref: Success}, {properties: {data: {$ref: ModelList}}}]`);
- implicitly, as the answer alone (`{$ref: ModelList}`): the document the API serves
  (`/openapi.json`, what Swagger UI and Schemathesis read) then says the envelope around it.

Codegen and the REST layer both decide with `envelope_data`, so they never disagree.
"""

from __future__ import annotations

import copy
import json
from typing import Any

KEY = "x-grey-envelope"
"""Top-level OpenAPI key: `true` wraps every answer of the API in the envelope."""

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def declared(document: dict[str, Any]) -> bool:
    """Whether the contract says `x-grey-envelope: true` (anything but a boolean is an error)."""
    value = document.get(KEY, False)
    if not isinstance(value, bool):
        raise ValueError(f"{KEY} must be true or false, not {value!r}")
    return value


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _parts(document: dict[str, Any], schema: dict[str, Any]) -> tuple[bool, dict[str, Any] | None]:
    """(declares `success`, the most specific `data` schema) over the schema and its `allOf`."""
    node = _resolve(document, schema)
    properties = node.get("properties", {})
    is_envelope = "success" in properties
    data = properties.get("data") if isinstance(properties.get("data"), dict) else None
    for part in node.get("allOf", []):
        part_is_envelope, part_data = _parts(document, part)
        is_envelope = is_envelope or part_is_envelope
        if part_data is not None and (data is None or "$ref" in part_data):
            data = part_data
    return is_envelope, data


def envelope_data(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any] | None:
    """The `data` schema when `schema` is spelled as the envelope (declares `success`, itself
    or in an `allOf` part); None when it is the answer alone."""
    is_envelope, data = _parts(document, schema)
    if not is_envelope:
        return None
    return data if data is not None else {}


def success_schema(data: dict[str, Any]) -> dict[str, Any]:
    """The envelope of a success around the answer's schema."""
    return {
        "type": "object",
        "required": ["success", "data", "error"],
        "properties": {
            "success": {"type": "boolean", "enum": [True]},
            "data": data,
            "error": {"type": "object", "nullable": True, "description": "Always null on success"},
        },
    }


def served_document(document: dict[str, Any]) -> dict[str, Any]:
    """The contract as an enveloped API serves it: with the envelope said around every success
    answer spelled implicitly (a copy; those spelled out stay as written)."""
    served = copy.deepcopy(document)
    for item in served.get("paths", {}).values():
        for method in _METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            responses = operation.get("responses", {})
            for status, response in list(responses.items()):
                if not str(status).startswith("2"):
                    continue
                if "$ref" in response:  # a shared response: wrapped in this operation's copy only
                    response = responses[status] = copy.deepcopy(_resolve(served, response))
                media = response.get("content", {}).get("application/json")
                if not media or "schema" not in media:
                    continue
                if envelope_data(served, media["schema"]) is None:
                    media["schema"] = success_schema(media["schema"])
    return served


def success_body(answer_json: bytes) -> bytes:
    """The envelope of a success around the answer's JSON."""
    return b'{"success":true,"data":' + answer_json + b',"error":null}'


def error_body(error: dict[str, Any]) -> dict[str, Any]:
    """The envelope of an error around its `{code, message, details, ...}`."""
    return {"success": False, "data": None, "error": error}


def unwrap(body: bytes) -> tuple[bool, Any, Any]:
    """(success, data, error) of an enveloped answer; ValueError when it is not one."""
    decoded = json.loads(body)
    if not isinstance(decoded, dict) or "success" not in decoded:
        raise ValueError("not a {success, data, error} envelope")
    return bool(decoded["success"]), decoded.get("data"), decoded.get("error")
