"""Calls to a path without parameters skip connexion's routers once it has routed one there,
and the layers below see exactly the scope connexion's routing would have handed them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from connexion.middleware.abstract import ROUTING_CONTEXT
from connexion.middleware.routing import RoutingMiddleware

from runtime.gateway.dispatch import new_request_id
from runtime.gateway.rest.admission import AdmissionMiddleware
from runtime.gateway.rest.edge import CALL_KEY, REQUEST_ID_KEY
from runtime.gateway.rest.static_routes import StaticRoutes

VALID = {"type": "stateless", "payload": {"function": "echo"}}


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """The scopes admission was handed, and how many calls went through connexion's routing."""
    record: dict[str, list[Any]] = {"admitted": [], "routed": []}
    admit, route = AdmissionMiddleware.__call__, RoutingMiddleware.__call__

    async def admitting(self, scope, receive, send):
        record["admitted"].append(dict(scope))
        await admit(self, scope, receive, send)

    async def routing(self, scope, receive, send):
        record["routed"].append(scope["path"])
        await route(self, scope, receive, send)

    monkeypatch.setattr(AdmissionMiddleware, "__call__", admitting)
    monkeypatch.setattr(RoutingMiddleware, "__call__", routing)
    return record


def _comparable(scope: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in scope.items() if k not in (REQUEST_ID_KEY, CALL_KEY)}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_second_submit_skips_routing_with_the_scope_routing_builds(rest, key, seen) -> None:
    headers = {"X-API-Key": key, "X-Request-ID": "same-id"}
    first = await rest.post("/v1/tasks", json=VALID, headers=headers)
    second = await rest.post("/v1/tasks", json=VALID, headers=headers)
    assert first.status_code == second.status_code == 201, second.text
    assert seen["routed"] == ["/v1/tasks"]  # the second call did not go through connexion's routing
    routed, remembered = seen["admitted"]
    assert _comparable(remembered) == _comparable(routed)
    assert remembered[CALL_KEY] is not routed[CALL_KEY]  # each call names its own operation
    # The self-hosted alias of the same path is remembered as the path it is rewritten to.
    third = await rest.post("/api/v1/tasks", json=VALID, headers=headers)
    assert third.status_code == 201 and seen["routed"] == ["/v1/tasks"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_remembered_calls_are_still_authenticated_validated_and_limited(rest, key, seen) -> None:
    assert (await rest.post("/v1/tasks", json=VALID, headers={"X-API-Key": key})).status_code == 201
    missing = await rest.post("/v1/tasks", json=VALID)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
    wrong = await rest.post("/v1/tasks", json=VALID, headers={"X-API-Key": "grey_api_key_acme_nope"})
    assert wrong.status_code == 401
    bad = await rest.post("/v1/tasks", json={**VALID, "priority": "urgent"}, headers={"X-API-Key": key})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_payload"
    again = await rest.post("/v1/tasks", json=VALID, headers={"X-API-Key": key})
    assert again.status_code == 201 and "x-ratelimit-remaining" in again.headers
    assert seen["routed"] == ["/v1/tasks"]


def test_a_new_request_id_is_a_version_4_uuid() -> None:
    ids = {new_request_id() for _ in range(200)}
    assert len(ids) == 200
    for request_id in ids:
        assert request_id.startswith("req_")
        parsed = uuid.UUID(request_id[4:])
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == request_id[4:]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_paths_with_parameters_other_methods_and_misses_always_go_through_connexion(
    rest, key, seen
) -> None:
    headers = {"X-API-Key": key}
    task_id = (await rest.post("/v1/tasks", json=VALID, headers=headers)).json()["task_id"]
    for _ in range(2):
        assert (await rest.get(f"/v1/tasks/{task_id}", headers=headers)).status_code == 200
        not_allowed = await rest.delete("/v1/tasks", headers=headers)
        assert not_allowed.status_code == 405 and "POST" in not_allowed.headers["allow"]
        assert (await rest.get("/v1/nowhere", headers=headers)).status_code == 404
        assert (await rest.get("/openapi.json")).status_code == 200
    assert seen["routed"].count(f"/v1/tasks/{task_id}") == 2
    assert seen["routed"].count("/v1/tasks") == 3  # the first POST, then the two DELETEs
    assert seen["routed"].count("/v1/nowhere") == 2


async def _nowhere(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("never called")


def test_only_parameterless_operations_in_their_own_method_are_learned() -> None:
    from generated.grey.operations import OPERATIONS

    routes = StaticRoutes(OPERATIONS)
    submit = next(op for op in OPERATIONS.values() if op.method == "POST" and op.path == "/v1/tasks")
    get = next(op for op in OPERATIONS.values() if "{" in op.path)
    context = ROUTING_CONTEXT
    for method, operation, params in [
        ("HEAD", submit, {}),  # another method than the operation's
        ("GET", get, {"task_id": "t"}),  # a path with parameters
    ]:
        scope = {
            "type": "http",
            "method": method,
            "path": operation.path,
            "path_params": params,
            "extensions": {context: {"operation_id": operation.operation_id, "api_base_path": ""}},
        }
        routes.learn(scope, _nowhere)
    assert not routes._known
