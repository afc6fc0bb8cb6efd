"""CloudAI called as its reference's clients do: JSON over HTTP with an `X-API-Key`.

`cloudai` is an httpx client of CloudAI's REST app on the test's services (SQLite and
PostgreSQL); `seed_task` and `seed_worker` write store rows directly, so listings, worker
figures and 409s are tested without running containers (tests/execution runs them).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.support.cloudai import SUBMIT, headers_for, seed_task, seed_worker
from tests.support.platform import TEST_RATE_LIMITS as UNLIMITED

__all__ = ["SUBMIT", "UNLIMITED", "headers_for", "seed_task", "seed_worker"]


@pytest.fixture
def cloudai(api_rest: Callable[[str], httpx.AsyncClient]) -> httpx.AsyncClient:
    return api_rest("cloudai")


@pytest.fixture
def headers(key: str) -> dict[str, str]:
    """Tenant `acme`, every scope."""
    return {"X-API-Key": key}
