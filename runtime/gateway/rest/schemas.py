"""OpenAPI 3.0 schemas → JSON Schema, compiled once with jsonschema-rs.

connexion builds a pure-Python validator on every request (see shared/notes); compiling
each schema once at start-up keeps full validation at a fraction of the cost.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs

_OPENAPI_ONLY = ("nullable", "example", "discriminator", "xml", "externalDocs", "deprecated")


def to_json_schema(schema: Any) -> Any:
    """Rewrites OpenAPI's `nullable: true` as a JSON Schema null branch, recursively."""
    if isinstance(schema, list):
        return [to_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {
        key: to_json_schema(value)
        for key, value in schema.items()
        if key not in _OPENAPI_ONLY and not key.startswith("x-")
    }
    if schema.get("nullable"):
        if "type" in converted and "enum" not in converted:
            converted["type"] = [converted["type"], "null"]
        else:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


def compile_schema(schema: dict[str, Any]) -> jsonschema_rs.Draft4Validator:
    return jsonschema_rs.Draft4Validator(to_json_schema(schema), validate_formats=True)


def first_error(validator: jsonschema_rs.Draft4Validator, instance: Any) -> tuple[str, str] | None:
    """(field path, message naming the field and what was expected), or None when valid."""
    for error in validator.iter_errors(instance):
        path = "/".join(str(part) for part in error.instance_path)
        return path, (f"{path}: {error.message}" if path else error.message)
    return None
