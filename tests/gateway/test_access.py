"""Credentials and scopes, checked by the gateway once for both transports (runtime.gateway.dispatch)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import yaml

import handlers.grey
from generated.grey.operations import OPERATIONS
from runtime.gateway.contracts import CONTRACTS
from runtime.services.auth import SCOPES
from tests.support.platform import make_key

SPEC = Path(__file__).resolve().parents[2] / "spec" / "grey" / "openapi.yaml"
SUBMIT = {"type": "stateless", "payload": {"function": "echo"}}


def contract_scopes() -> dict[str, frozenset[str]]:
    """The `x-grey-scopes` of every operation of spec/openapi.yaml, by operation id."""
    document = yaml.safe_load(SPEC.read_text())
    return {
        operation["operationId"]: frozenset(operation.get("x-grey-scopes") or ())
        for item in document["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }


def handler_constants() -> set[str]:
    """The string values every handlers/grey module holds at module level (imported constants too)."""
    values: set[str] = set()
    for module_info in pkgutil.iter_modules(handlers.grey.__path__):
        module = importlib.import_module(f"handlers.grey.{module_info.name}")
        values |= {v for k, v in vars(module).items() if isinstance(v, str) and not k.startswith("__")}
    return values


async def test_missing_credentials_are_unauthorized(call) -> None:
    assert (await call("submitTask", None, **SUBMIT)).code == "unauthorized"
    assert (await call("submitTask", "grey_api_key_acme_wrong", **SUBMIT)).code == "unauthorized"


async def test_a_key_without_the_scope_is_forbidden(call, services) -> None:
    reader = make_key(services, "acme", frozenset({"tasks:read"}))
    assert (await call("submitTask", reader, **SUBMIT)).code == "forbidden"
    assert (await call("listTasks", reader)).ok
    assert (await call("getClusterHealth", reader)).code == "forbidden"


def test_every_scope_is_known_and_every_known_scope_is_used() -> None:
    named = contract_scopes()
    assert {op: OPERATIONS[op].scopes for op in named} == named  # what the gateway enforces
    used = frozenset().union(*named.values())
    assert used <= SCOPES, f"scopes the contract names but keys cannot carry: {sorted(used - SCOPES)}"
    public = {op for op, operation in OPERATIONS.items() if operation.public}
    assert {op for op, scopes in named.items() if not scopes} == public
    # A scope no operation of any API names must be one a handler checks itself (e.g. another
    # tenant's data); `containers:run` is CloudAI's submit's.
    every_api = frozenset().union(*(op.scopes for c in CONTRACTS.values() for op in c.operations.values()))
    assert every_api <= SCOPES, f"scopes an API names but keys cannot carry: {sorted(every_api - SCOPES)}"
    unused = SCOPES - used - every_api
    assert unused <= handler_constants(), f"scopes nothing checks: {sorted(unused - handler_constants())}"


async def test_every_operation_refuses_a_key_without_its_scopes(rest, services) -> None:
    refused = {}
    for operation_id, operation in OPERATIONS.items():
        if operation.public:
            continue
        key = make_key(services, "acme", SCOPES - operation.scopes)
        path = operation.path
        for name in operation.path_params:
            path = path.replace("{" + name + "}", "x")
        response = await rest.request(operation.method, path, headers={"X-API-Key": key})
        refused[operation_id] = (response.status_code, response.json()["error"]["code"])
    assert refused == {op: (403, "forbidden") for op in refused}
