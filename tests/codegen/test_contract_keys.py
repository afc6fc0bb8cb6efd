"""The per-API keys of a contract: x-grey-error-codes, x-grey-rate-class, info.x-grey-client-name."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml

from codegen.contract import RATE_CLASSES, Contract, ContractError, load_contract
from codegen.error_codes import error_codes, render_errors
from codegen.pipeline import client_names, generate_api
from runtime.api.errors import ERRORS
from runtime.gateway.dispatch import bucket_of
from runtime.services.ratelimit import BUCKETS

ROOT = Path(__file__).resolve().parents[2]

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Demo API", "version": "1.0.0"},
    "paths": {
        "/v1/greetings/{name}": {
            "get": {
                "operationId": "getGreeting",
                "tags": ["greetings"],
                "summary": "Greet someone",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {
                        "description": "A greeting",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Greeting"}}
                        },
                    }
                },
            },
            "post": {
                "operationId": "sendGreeting",
                "tags": ["greetings"],
                "summary": "Send a greeting",
                "x-grey-rate-class": "submit",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"204": {"description": "Sent"}},
            },
        }
    },
    "components": {
        "schemas": {
            "Greeting": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
        }
    },
}

API_CODES = {code: code.upper() for code in ERRORS} | {"invalid_payload": "VALIDATION_ERROR"}


def _contract(
    tmp_path: Path,
    top: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
    schemas: dict[str, Any] | None = None,
) -> Contract:
    """The demo spec with keys added at the top, to `info` and to the schemas, loaded as codegen does."""
    document = yaml.safe_load(yaml.safe_dump(SPEC))
    document.update(top or {})
    document["info"].update(info or {})
    document["components"]["schemas"].update(schemas or {})
    path = tmp_path / "openapi.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return load_contract(path)


# x-grey-error-codes ---------------------------------------------------------------------------


def test_without_error_codes_the_table_is_the_identity(tmp_path: Path) -> None:
    assert error_codes(_contract(tmp_path), "demo") == {code: code for code in ERRORS}


def test_declared_error_codes_become_the_table_in_internal_order(tmp_path: Path) -> None:
    contract = _contract(tmp_path, top={"x-grey-error-codes": API_CODES})
    table = error_codes(contract, "demo")
    assert list(table) == list(ERRORS)
    assert table["invalid_payload"] == "VALIDATION_ERROR" and table["task_not_found"] == "TASK_NOT_FOUND"
    namespace: dict[str, Any] = {}
    exec(compile(render_errors(contract, "# header", "demo"), "errors.py", "exec"), namespace)
    assert namespace["ERROR_CODES"] == table


def test_an_internal_code_without_an_api_code_stops_codegen(tmp_path: Path) -> None:
    codes = {code: value for code, value in API_CODES.items() if code not in ("queue_full", "conflict")}
    with pytest.raises(ContractError) as stopped:
        error_codes(_contract(tmp_path, top={"x-grey-error-codes": codes}), "demo")
    assert str(stopped.value).startswith("spec/demo: x-grey-error-codes")
    assert "internal codes without an API code: conflict, queue_full" in str(stopped.value)


def test_an_unknown_internal_code_stops_codegen(tmp_path: Path) -> None:
    codes = API_CODES | {"teapot": "TEAPOT"}
    with pytest.raises(ContractError) as stopped:
        error_codes(_contract(tmp_path, top={"x-grey-error-codes": codes}), "demo")
    assert "spec/demo" in str(stopped.value) and "unknown internal codes" in str(stopped.value)
    assert "teapot" in str(stopped.value)


def test_an_api_code_outside_the_error_code_enum_stops_codegen(tmp_path: Path) -> None:
    allowed = sorted(set(API_CODES.values()) - {"QUEUE_FULL"})
    contract = _contract(
        tmp_path,
        top={"x-grey-error-codes": API_CODES},
        schemas={"ErrorCode": {"type": "string", "enum": allowed}},
    )
    with pytest.raises(ContractError) as stopped:
        error_codes(contract, "demo")
    assert "spec/demo" in str(stopped.value) and "components.schemas.ErrorCode" in str(stopped.value)
    assert "queue_full → QUEUE_FULL" in str(stopped.value)
    contract = _contract(
        tmp_path,
        top={"x-grey-error-codes": API_CODES},
        schemas={"ErrorCode": {"type": "string", "enum": [*allowed, "QUEUE_FULL"]}},
    )
    assert error_codes(contract, "demo")["queue_full"] == "QUEUE_FULL"


def test_generated_errors_module_of_grey_is_the_identity(tmp_path: Path) -> None:
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "grey").symlink_to(ROOT / "spec" / "grey")
    generate_api(tmp_path, "grey", tmp_path / "out")
    tree = ast.parse((tmp_path / "out" / "errors.py").read_text())
    (assignment,) = [node for node in tree.body if isinstance(node, ast.AnnAssign)]
    assert assignment.value is not None
    assert ast.literal_eval(assignment.value) == {code: code for code in ERRORS}
    client = (tmp_path / "out" / "client.py").read_text()
    assert (
        "class GreyClient(GreyClientBase):" in client
        and "class AsyncGreyClient(AsyncGreyClientBase):" in client
    )


# x-grey-rate-class ----------------------------------------------------------------------------


def test_rate_class_comes_from_the_operation_and_defaults_to_other(tmp_path: Path) -> None:
    classes = {op.operation_id: op.rate_class for op in _contract(tmp_path).operations}
    assert classes == {"getGreeting": "other", "sendGreeting": "submit"}


def test_an_unknown_rate_class_stops_codegen_naming_the_api_and_operation(tmp_path: Path) -> None:
    spec = yaml.safe_load(yaml.safe_dump(SPEC))
    spec["paths"]["/v1/greetings/{name}"]["get"]["x-grey-rate-class"] = "bulk"
    folder = tmp_path / "spec" / "demo"
    folder.mkdir(parents=True)
    (folder / "openapi.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(ContractError) as stopped:
        generate_api(tmp_path, "demo", tmp_path / "out")
    message = str(stopped.value)
    assert message.startswith("spec/demo: ")
    assert (
        "getGreeting: x-grey-rate-class is 'bulk'; expected one of submit, tasks_read, cluster, other"
        in message
    )


def test_every_rate_class_is_a_limiter_bucket() -> None:
    assert set(RATE_CLASSES) <= set(BUCKETS)


def test_grey_keeps_the_rate_classes_bucket_of_used_to_derive() -> None:
    """Before x-grey-rate-class, bucket_of read them off operationId, tag and method."""
    for op in load_contract(ROOT / "spec" / "grey" / "openapi.yaml").operations:
        if op.operation_id == "submitTask":
            before = "submit"
        elif op.tag == "tasks" and op.method == "get":
            before = "tasks_read"
        elif op.tag == "cluster":
            before = "cluster"
        else:
            before = "other"
        assert op.rate_class == before, op.operation_id


def test_bucket_of_is_the_operations_rate_class() -> None:
    from generated.grey.operations import OPERATIONS

    assert {bucket_of(op) for op in OPERATIONS.values()} == {"submit", "tasks_read", "cluster", "other"}
    for op in OPERATIONS.values():
        assert bucket_of(op) == op.rate_class


# info.x-grey-client-name ----------------------------------------------------------------------


def test_client_classes_are_named_after_the_api_folder(tmp_path: Path) -> None:
    contract = _contract(tmp_path)
    assert client_names(contract, "grey") == ("GreyClient", "AsyncGreyClient")
    assert client_names(contract, "openmcp") == ("OpenmcpClient", "AsyncOpenmcpClient")
    assert client_names(contract, "task_hub") == ("TaskHubClient", "AsyncTaskHubClient")


def test_client_name_from_the_info_wins(tmp_path: Path) -> None:
    contract = _contract(tmp_path, info={"x-grey-client-name": "OpenMCPClient"})
    assert client_names(contract, "openmcp") == ("OpenMCPClient", "AsyncOpenMCPClient")


def test_a_client_name_that_is_no_class_name_stops_codegen(tmp_path: Path) -> None:
    contract = _contract(tmp_path, info={"x-grey-client-name": "Open MCP"})
    with pytest.raises(ContractError, match=r"spec/openmcp: info.x-grey-client-name 'Open MCP'"):
        client_names(contract, "openmcp")


def test_the_generated_client_uses_the_names(tmp_path: Path) -> None:
    spec = yaml.safe_load(yaml.safe_dump(SPEC))
    spec["info"]["x-grey-client-name"] = "HelloClient"
    folder = tmp_path / "spec" / "demo"
    folder.mkdir(parents=True)
    (folder / "openapi.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    generate_api(tmp_path, "demo", tmp_path / "out")
    client = (tmp_path / "out" / "client.py").read_text()
    assert "class HelloClient(GreyClientBase):" in client
    assert "class AsyncHelloClient(AsyncGreyClientBase):" in client
    assert '__all__ = ["AsyncHelloClient", "GreyApiError", "HelloClient", "RetryPolicy"]' in client


# x-grey-envelope ------------------------------------------------------------------------------

GREETING_ENVELOPE = {
    "allOf": [
        {
            "type": "object",
            "required": ["success", "data", "error"],
            "properties": {"success": {"type": "boolean"}, "data": {}, "error": {"nullable": True}},
        },
        {"type": "object", "properties": {"data": {"$ref": "#/components/schemas/Greeting"}}},
    ]
}


def _with_answer(tmp_path: Path, schema: dict[str, Any], envelope: Any = True) -> Contract:
    spec = yaml.safe_load(yaml.safe_dump(SPEC))
    spec["x-grey-envelope"] = envelope
    spec["paths"]["/v1/greetings/{name}"]["get"]["responses"]["200"]["content"]["application/json"] = {
        "schema": schema
    }
    path = tmp_path / "openapi.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return load_contract(path)


def test_without_the_envelope_key_answers_are_bare(tmp_path: Path) -> None:
    assert _contract(tmp_path).envelope is False


def test_an_envelope_spelled_out_answers_with_its_data_model(tmp_path: Path) -> None:
    contract = _with_answer(tmp_path, GREETING_ENVELOPE)
    assert contract.envelope is True
    get = next(op for op in contract.operations if op.operation_id == "getGreeting")
    assert get.response_schema == "Greeting"


def test_an_envelope_left_implicit_answers_with_the_schema_named(tmp_path: Path) -> None:
    contract = _with_answer(tmp_path, {"$ref": "#/components/schemas/Greeting"})
    get = next(op for op in contract.operations if op.operation_id == "getGreeting")
    assert contract.envelope is True and get.response_schema == "Greeting"


def test_an_enveloped_answer_that_names_no_model_stops_codegen(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="getGreeting: its 200 answer is not a \\$ref"):
        _with_answer(tmp_path, {"type": "object", "properties": {"text": {"type": "string"}}})


def test_the_envelope_key_must_be_a_boolean(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="x-grey-envelope must be true or false"):
        _with_answer(tmp_path, {"$ref": "#/components/schemas/Greeting"}, envelope="yes")


def test_an_envelope_contract_generates_an_unwrapping_client_and_says_so_in_its_operations(
    tmp_path: Path,
) -> None:
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "gswarm_host").symlink_to(ROOT / "spec" / "gswarm_host")
    generate_api(tmp_path, "gswarm_host", tmp_path / "out")
    assert "ENVELOPE: bool = True" in (tmp_path / "out" / "operations.py").read_text()
    client = (tmp_path / "out" / "client.py").read_text()
    assert client.count("envelope = True") == 2  # the sync and the async client
    assert "envelope = True" not in (ROOT / "generated" / "grey" / "client.py").read_text()
