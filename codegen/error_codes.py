"""generated/<api>/errors.py: the API's own spelling of every internal error code.

A handler raises `ApiError("task_not_found", ...)` whatever API it serves; the contract says
which code that is in this API's vocabulary with the top-level OpenAPI key
`x-grey-error-codes` (internal code → API code). An API without the key keeps the internal
codes (identity), as Grey does. When the document has a `components.schemas.ErrorCode` with
an `enum`, every API code must be one of its values.
"""

from __future__ import annotations

from typing import Any

from codegen.contract import Contract, ContractError
from runtime.api.errors import ERRORS

KEY = "x-grey-error-codes"


def _declared_enum(contract: Contract) -> list[Any] | None:
    schema = contract.document.get("components", {}).get("schemas", {}).get("ErrorCode")
    while isinstance(schema, dict) and "$ref" in schema:
        schema = contract.schemas.get(schema["$ref"].rsplit("/", 1)[-1])
    if not isinstance(schema, dict) or "enum" not in schema:
        return None
    return list(schema["enum"])


def error_codes(contract: Contract, api: str) -> dict[str, str]:
    """Internal code → this API's code, in the order of `runtime.api.errors.ERRORS`."""
    declared = contract.document.get(KEY)
    if declared is None:
        table = {code: code for code in ERRORS}
    elif not isinstance(declared, dict):
        raise ContractError(f"spec/{api}: {KEY} must map each internal error code to this API's code")
    else:
        problems: list[str] = []
        missing = [code for code in ERRORS if code not in declared]
        unknown = sorted(str(code) for code in declared if code not in ERRORS)
        not_text = sorted(str(code) for code, value in declared.items() if not isinstance(value, str))
        if missing:
            problems.append(f"internal codes without an API code: {', '.join(missing)}")
        if unknown:
            problems.append(
                f"unknown internal codes (not in runtime.api.errors.ERRORS): {', '.join(unknown)}"
            )
        if not_text:
            problems.append(f"API codes must be strings: {', '.join(not_text)}")
        if problems:
            raise ContractError(f"spec/{api}: {KEY} is wrong:\n  " + "\n  ".join(problems))
        table = {code: declared[code] for code in ERRORS}
    allowed = _declared_enum(contract)
    if allowed is not None:
        outside = [f"{code} → {value}" for code, value in table.items() if value not in allowed]
        if outside:
            raise ContractError(
                f"spec/{api}: {KEY} maps to codes that components.schemas.ErrorCode does not list "
                f"({', '.join(str(v) for v in allowed)}):\n  " + "\n  ".join(outside)
            )
    return table


def render_errors(contract: Contract, header: str, api: str) -> str:
    """The source of generated/<api>/errors.py."""
    table = error_codes(contract, api)
    rows = "\n".join(f"    {code!r}: {value!r}," for code, value in table.items())
    source = (
        "the OpenAPI's x-grey-error-codes" if KEY in contract.document else "identity: no x-grey-error-codes"
    )
    return f'''{header}
"""This API's error codes: every internal code of runtime.api.errors.ERRORS ({source})."""

ERROR_CODES: dict[str, str] = {{
{rows}
}}
"""Internal code (what handlers raise) → the code this API's error envelope and gRPC trailers carry."""
'''
