"""A WebSocket upgrade on a path that is not a WebSocket endpoint answers a proper HTTP
error in the API's envelope (it used to be a bare 500: the app answered nothing)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse

from runtime.gateway.app import Platform, _ByPort
from runtime.gateway.contracts import CONTRACTS

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _refusal(app, path: str, headers: dict[str, str] | None = None) -> WebSocketDenialResponse:
    client = TestClient(app)  # no lifespan: the gateway's REST apps take none
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        client.websocket_connect(path, headers=dict(headers or {})),
    ):
        pass
    return refused.value


def _some_rest_path(api: str) -> str:
    """The path of one of the API's REST operations (its parameters filled in)."""
    operation = next(iter(CONTRACTS[api].operations.values()))
    return operation.path.replace("{", "").replace("}", "")


@SQLITE
@pytest.mark.parametrize("api", list(CONTRACTS))
@pytest.mark.parametrize("where", ["operation", "unknown", "root"])
def test_an_upgrade_on_a_path_without_a_websocket_endpoint_is_a_404_in_the_apis_envelope(
    every_api: Platform, api: str, where: str
) -> None:
    path = {"operation": _some_rest_path(api), "unknown": "/no/such/path", "root": "/"}[where]
    refused = _refusal(every_api.gateways[api].rest, path)
    assert refused.status_code == 404
    error = refused.json()["error"]
    assert error["code"] == CONTRACTS[api].public_code("not_found")
    assert path in error["message"]
    assert refused.headers["x-request-id"]


@SQLITE
def test_an_upgrade_under_no_base_path_of_a_shared_port_is_a_404(every_api: Platform) -> None:
    by_port = _ByPort(
        {8080: {"/a": every_api.gateways["grey"].rest, "/b": every_api.gateways["openmcp"].rest}}
    )
    refused = _refusal(by_port, "/elsewhere")
    assert refused.status_code == 404
    assert "this port serves" in refused.json()["error"]["message"]


@SQLITE
def test_the_telemetry_endpoint_refuses_an_upgrade_without_credentials(every_api: Platform) -> None:
    refused = _refusal(every_api.gateways["cloudai"].rest, "/ws/telemetry")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == CONTRACTS["cloudai"].public_code("unauthorized")


@SQLITE
def test_a_wrong_key_is_refused_like_rest(every_api: Platform) -> None:
    refused = _refusal(every_api.gateways["cloudai"].rest, "/ws/telemetry", {"X-API-Key": "grey_nope"})
    assert refused.status_code == 401
