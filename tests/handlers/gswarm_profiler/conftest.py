"""gswarm's profiler API called as its reference's clients do: JSON over HTTP, in the envelope.

`profiler_api` is an httpx client of the contract's REST app on the test's services (SQLite
and PostgreSQL); `repository` writes clients and frames directly, so listings are tested
without sampling (tests/execution/profiler samples).
"""

from __future__ import annotations

from collections.abc import Callable

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
