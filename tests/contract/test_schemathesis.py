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
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import use_after_free
from starlette.types import ASGIApp

from runtime.config import ApiRateLimits, ClusterConfig
from runtime.gateway.app import Platform
from runtime.gateway.contracts import CONTRACTS, ApiContract
from runtime.services import Services
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
_key = _services.auth.create_key(
    "contract",
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


def _stateful_test(schema: Any) -> Any:
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

    test_case = Workflow.TestCase
    test_case.settings = settings(
        max_examples=40,
        stateful_step_count=6,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    return test_case


for _name, _contract in CONTRACTS.items():
    _api_schema = _schema(_contract)
    globals()[f"test_{_name}_every_operation_conforms_to_the_contract"] = _conformance_test(_api_schema)
    globals()[f"TestStatefulSequences_{_name}"] = _stateful_test(_api_schema)


@pytest.mark.parametrize("api", sorted(CONTRACTS))
def test_the_excluded_operations_are_exactly_those_answering_501(api: str) -> None:
    from starlette.testclient import TestClient

    contract = CONTRACTS[api]
    app: ASGIApp = _platform.gateways[api].rest
    client = TestClient(app)
    for operation_id in NOT_BUILT_BY_API.get(api, ()):
        operation = contract.operations[operation_id]
        path = operation.path.replace("{task_id}", "task_x").replace("{node_id}", "node-1")
        body = {"node_id": "node-1"} if operation.has_body else None
        response = client.request(operation.method, path, json=body, headers={"X-API-Key": _key})
        assert response.status_code == 501, operation_id
        assert response.json()["error"]["code"] == "not_implemented"
