"""Schemathesis against the in-process app of every API's contract: every default check,
positive and negative data, and stateful sequences through the OpenAPI links (for Grey:
submit → get / cancel / result / proof / stream).

The tests are made per contract of runtime/gateway/contracts.py (`test_<api>_...`,
`TestStatefulSequences_<api>`), so a new API is tested as soon as it is registered.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import use_after_free
from starlette.types import ASGIApp

from runtime.config import ApiRateLimits, ClusterConfig
from runtime.gateway.app import Platform
from runtime.gateway.contracts import CONTRACTS, ApiContract
from runtime.services import Services, placement, profiler
from runtime.settings import Settings
from tests.not_built import NOT_BUILT_BY_API

_home = Path(tempfile.mkdtemp(prefix="grey-contract-"))
# One client sends thousands of deliberately invalid credentials (the `ignored_auth` check):
# the per-address failure limit would answer 429 there, as it should to a real guesser.
# CloudAI's reference limits (10 submissions a minute) would answer most generated calls 429;
# tests/handlers/cloudai/test_rate_limits.py checks them.
_limits = ClusterConfig.default().rate_limits.model_copy(
    update={
        "auth_failures": None,
        "apis": {"cloudai": ApiRateLimits(submit=None, tasks_read=None, cluster=None, other=None)},
    }
)
_services = Services.open(Settings(database_url=f"sqlite:///{_home / 'grey.db'}"), _limits)
_platform = Platform.build(_services, list(CONTRACTS.values()))
_TENANT = "contract"
_key = _services.auth.create_key(
    _TENANT,
    frozenset(
        {
            "tasks:read",
            "tasks:write",
            "cluster:read",
            "cluster:admin",
            "security:read",
            "security:admin",
            "containers:run",
        }
    ),
)


def _schema(contract: ApiContract) -> Any:
    app = _platform.gateways[contract.name].rest
    excluded = list(NOT_BUILT_BY_API.get(contract.name, ()))
    schema: Any = schemathesis.openapi.from_asgi("/openapi.json", app)
    if excluded:
        schema = schema.exclude(operation_id=excluded)

    @schema.auth()
    class ApiKeyAuth:
        """Every generated call carries a valid key; the `ignored_auth` check removes it on purpose."""

        def get(self, case, ctx) -> str:
            return _key

        def set(self, case, data: str, ctx) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    return schema


def _conformance_test(schema: Any) -> Any:
    @schema.parametrize()
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    def test_every_operation_conforms_to_the_contract(case) -> None:
        case.call_and_validate()

    return test_every_operation_conforms_to_the_contract


def _stop_every_profiling_session() -> None:
    """gswarm's profiler: a session a sequence started stays active (its name then answers
    409 to a start); each sequence starts with none, so its answers do not depend on the last."""
    for session in profiler.sessions(_services.store, active=True, limit=1000):
        profiler.stop(_services.store, session.name)


def _forget_every_model_and_chunk() -> None:
    """gswarm's registry: a model name a sequence registered answers 409 to the next
    sequence's register of the same name; each sequence starts with an empty registry."""
    while True:
        views, _ = placement.list_model_views_sync(_services, _TENANT, per_page=100)
        if not views:
            break
        for view in views:
            placement.delete_model_sync(_services, _TENANT, view["model_name"], force=True)
    for chunk in placement.list_chunks_sync(_services, _TENANT):
        placement.delete_chunk_sync(_services, _TENANT, chunk["chunk_id"], force=True)


#: Per API: what to undo after each stateful sequence, where one leaves state behind.
_RESET_AFTER_EACH_SEQUENCE = {
    "gswarm_profiler": _stop_every_profiling_session,
    "gswarm_host": _forget_every_model_and_chunk,
    "gswarm_client": _forget_every_model_and_chunk,
}


def _stateful_test(schema: Any, api: str = "") -> Any:
    reset = _RESET_AFTER_EACH_SEQUENCE.get(api)

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        """Every default check but `use_after_free`.

        That check assumes DELETE removes the resource. In the contract (Grey Distributed)
        `DELETE /v1/tasks/{id}` cancels: the task stays readable with status `cancelled`,
        which the tests in tests/api pin.
        """

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            case.validate_response(
                response,
                additional_checks=additional_checks,
                excluded_checks=[use_after_free],
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

        def teardown(self) -> None:
            if reset is not None:
                reset()

    test_case = Workflow.TestCase
    test_case.settings = settings(
        max_examples=40,
        stateful_step_count=6,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    return test_case


for _name, _contract in CONTRACTS.items():
    if not set(_contract.operations) - set(NOT_BUILT_BY_API.get(_name, ())):
        continue  # nothing built yet: the 501 test below covers the API
    _api_schema = _schema(_contract)
    globals()[f"test_{_name}_every_operation_conforms_to_the_contract"] = _conformance_test(_api_schema)
    globals()[f"TestStatefulSequences_{_name}"] = _stateful_test(_api_schema, _name)


def _example(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A value the schema accepts: its example, default or first enum value, else the least
    one of its type (an object with its required properties)."""
    while "$ref" in schema:
        target: Any = document
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        schema = target
    for key in ("example", "default"):
        if key in schema:
            return schema[key]
    if "enum" in schema:
        return schema["enum"][0]
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(_example(document, part))
        return merged
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: _example(document, properties[name]) for name in schema.get("required", [])}
    if kind == "array":
        return [_example(document, schema["items"])] * schema.get("minItems", 0)
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    return "x" * max(1, schema.get("minLength", 1))


def _valid_request(contract: ApiContract, operation_id: str) -> tuple[str, str, Any]:
    """(method, path, JSON body or None) of a call the contract accepts, from its examples."""
    document = yaml.safe_load(contract.spec.read_text())
    operation = contract.operations[operation_id]
    raw = document["paths"][operation.path][operation.method.lower()]
    path = operation.path
    for parameter in raw.get("parameters", []):
        if "$ref" in parameter:
            parameter = document["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[-1]]
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", str(_example(document, parameter["schema"])))
    body = None
    if "requestBody" in raw:
        body = _example(document, raw["requestBody"]["content"]["application/json"]["schema"])
    return operation.method, path, body


@pytest.mark.parametrize("api", sorted(CONTRACTS))
def test_the_excluded_operations_are_exactly_those_answering_501(api: str) -> None:
    from starlette.testclient import TestClient

    contract = CONTRACTS[api]
    app: ASGIApp = _platform.gateways[api].rest
    client = TestClient(app)
    for operation_id in NOT_BUILT_BY_API.get(api, ()):
        method, path, body = _valid_request(contract, operation_id)
        response = client.request(method, path, json=body, headers={"X-API-Key": _key})
        assert response.status_code == 501, (
            f"{api} {operation_id} answers {response.status_code}, not 501: once built, take it "
            f"out of tests/not_built.py ({response.text[:300]})"
        )
        assert response.json()["error"]["code"] == contract.public_code("not_implemented")
