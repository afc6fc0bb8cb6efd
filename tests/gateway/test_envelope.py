"""`x-grey-envelope: true`: every answer of such an API is `{success, data, error}` — the
handler's model as `data`, and every error (validation, unknown path, wrong method,
credentials, scope, rate limit, 501 skeletons, a handler's own) with `success: false` in the
API's codes — and the document it serves says so around answers the contract left bare.

CloudAI switched to the envelope stands for any API here (gswarm's are built with it)."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest

from runtime.api.context import RequestContext
from runtime.api.envelope import envelope_data, served_document
from runtime.api.errors import ApiError
from runtime.config import ApiRateLimits, RateLimits
from runtime.gateway.app import Platform
from runtime.gateway.contracts import CLOUDAI, CONTRACTS
from runtime.services import Services
from runtime.settings import Settings
from tests.support.platform import make_key

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _not_built(request: Any, ctx: RequestContext) -> Any:
    raise ApiError.not_implemented("getClusterStatus")


ENVELOPED = dataclasses.replace(
    CLOUDAI,
    envelope=True,
    handlers={**CLOUDAI.handlers, "getClusterStatus": _not_built},
)


def _client(services: Services) -> httpx.AsyncClient:
    app = Platform.build(services, [ENVELOPED]).gateways["cloudai"].rest
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cloudai.test")


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"success", "data", "error"}
    assert body["success"] is False and body["data"] is None
    assert body["error"]["code"] == code and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return dict(body["error"])


@SQLITE
async def test_a_success_is_the_handlers_model_as_data(services: Services) -> None:
    headers = {"X-API-Key": make_key(services, "acme")}
    async with _client(services) as client:
        response = await client.get("/api/tasks?limit=5", headers=headers)
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "data": {"tasks": [], "total": 0, "limit": 5, "offset": 0},
        "error": None,
    }


@SQLITE
async def test_every_kind_of_error_is_enveloped_in_the_apis_codes(services: Services) -> None:
    headers = {"X-API-Key": make_key(services, "acme")}
    reader = {"X-API-Key": make_key(services, "acme", frozenset({"tasks:read"}))}
    async with _client(services) as client:
        _error(await client.get("/api/nothing-here", headers=headers), 404, "NOT_FOUND")
        wrong = _error(await client.delete("/api/tasks", headers=headers), 405, "METHOD_NOT_ALLOWED")
        assert wrong["message"]
        _error(await client.get("/api/tasks?limit=0", headers=headers), 400, "INVALID_REQUEST")
        _error(await client.get("/api/tasks?nope=1", headers=headers), 400, "INVALID_REQUEST")
        _error(await client.post("/api/tasks", json={"user_id": ""}, headers=headers), 400, "INVALID_REQUEST")
        _error(
            await client.post(
                "/api/tasks", content=b"{", headers={**headers, "Content-Type": "application/json"}
            ),
            400,
            "INVALID_REQUEST",
        )
        _error(await client.get("/api/tasks"), 401, "UNAUTHORIZED")
        _error(await client.get("/api/workers", headers=reader), 403, "FORBIDDEN")
        _error(await client.get("/api/tasks/task_missing", headers=headers), 404, "TASK_NOT_FOUND")
        built_later = _error(await client.get("/api/cluster/status", headers=headers), 501, "NOT_IMPLEMENTED")
        assert built_later["details"] == {"operation_id": "getClusterStatus"}


@SQLITE
async def test_rate_limited_answers_are_enveloped(database_url: str) -> None:
    limits = RateLimits(apis={"cloudai": ApiRateLimits(tasks_read=1)})
    services = Services.open(Settings(database_url=database_url), limits)
    try:
        headers = {"X-API-Key": make_key(services, "acme")}
        async with _client(services) as client:
            assert (await client.get("/api/tasks", headers=headers)).status_code == 200
            response = await client.get("/api/tasks", headers=headers)
        _error(response, 429, "RATE_LIMITED")
        assert "retry-after" in response.headers
    finally:
        services.close()


@SQLITE
async def test_the_served_document_says_the_envelope(services: Services) -> None:
    async with _client(services) as client:
        document = (await client.get("/openapi.json")).json()
    answer = document["paths"]["/api/tasks"]["get"]["responses"]["200"]["content"]["application/json"]
    data = envelope_data(document, answer["schema"])  # connexion serves references resolved
    assert data is not None and {"tasks", "total", "limit", "offset"} <= set(data["properties"])


def test_a_spelled_out_envelope_is_served_as_written() -> None:
    import yaml

    written = yaml.safe_load(CONTRACTS["gswarm_host"].spec.read_text())
    assert served_document(written) == written
