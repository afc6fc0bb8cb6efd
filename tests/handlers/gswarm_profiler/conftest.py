"""gswarm's profiler API called as its reference's clients do: JSON over HTTP, in the envelope.

`profiler_api` is an httpx client of the contract's REST app on the test's services (SQLite
and PostgreSQL); `repository` writes clients and frames directly, so listings are tested
without sampling (tests/execution/profiler samples).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runtime.services import Services
from runtime.store.profiler import ProfilerRepository
from tests.support.platform import make_key


@pytest.fixture
def profiler_api(api_rest: Callable[[str], httpx.AsyncClient]) -> httpx.AsyncClient:
    return api_rest("gswarm_profiler")


@pytest.fixture
def admin(services: Services) -> dict[str, str]:
    """Tenant `acme`, every scope (cluster:admin among them)."""
    return {"X-API-Key": make_key(services, "acme")}


@pytest.fixture
def repository(services: Services) -> ProfilerRepository:
    return ProfilerRepository.of(services.store.engine)


def headers_for(services: Services, scopes: frozenset[str], tenant: str = "acme") -> dict[str, str]:
    return {"X-API-Key": make_key(services, tenant, scopes)}


def data(response: httpx.Response, status: int = 200) -> Any:
    """The `data` of a success in the envelope."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is True and body["error"] is None, body
    return body["data"]


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The `error` of a failure in the envelope."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["data"] is None, body
    assert body["error"]["code"] == code, body
    return dict(body["error"])
