"""CloudAI's reference limits: 10 submissions and 60 status queries a minute per client,
counted apart from Grey's windows and configurable in the cluster config."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from runtime.config import ClusterConfig, RateLimits, load_cluster_config
from runtime.gateway.app import Gateway
from runtime.gateway.contracts import CLOUDAI, GREY
from runtime.services import Services
from runtime.services.ratelimit import RateLimiter
from runtime.settings import Settings
from tests.handlers.cloudai.conftest import SUBMIT, headers_for, seed_worker
from tests.handlers.cloudai.test_tasks import assert_error


def _open(tmp_path: Path, limits: RateLimits, **settings: object) -> Services:
    return Services.open(
        Settings(database_url=f"sqlite:///{tmp_path / 'grey.db'}", credential_cache_seconds=0.0, **settings),  # type: ignore[arg-type]
        limits,
    )


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Services]:
    """The default limits (the reference's, for CloudAI)."""
    services = _open(tmp_path, ClusterConfig.default().rate_limits)
    yield services
    services.close()


@pytest.fixture
async def clients(limited: Services) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    clients = {}
    for contract in (CLOUDAI, GREY):
        app = Gateway.build(limited, contract).rest
        clients[contract.name] = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        )
    yield clients
    for client in clients.values():
        await client.aclose()


async def test_the_eleventh_submission_in_a_minute_is_rate_limited(
    clients: dict[str, httpx.AsyncClient], limited: Services
) -> None:
    seed_worker(limited)
    acme = headers_for(limited, "acme")
    for _ in range(10):
        assert (await clients["cloudai"].post("/api/tasks", json=SUBMIT, headers=acme)).status_code == 200
    refused = await clients["cloudai"].post("/api/tasks", json=SUBMIT, headers=acme)
    error = assert_error(refused, 429, "RATE_LIMITED")
    assert error["details"]["limit"] == 10 and error["details"]["window_seconds"] == 60
    assert int(refused.headers["Retry-After"]) >= 1
    assert limited.store.tasks.list("acme").total == 10
    # Another tenant has its own window; Grey's submit window is not CloudAI's.
    globex = headers_for(limited, "globex")
    assert (await clients["cloudai"].post("/api/tasks", json=SUBMIT, headers=globex)).status_code == 200
    grey = await clients["grey"].post(
        "/v1/tasks", json={"type": "stateless", "payload": {"function": "echo", "data": {}}}, headers=acme
    )
    assert grey.status_code in (200, 201, 202), grey.text


async def test_status_queries_share_sixty_a_minute(
    clients: dict[str, httpx.AsyncClient], limited: Services
) -> None:
    acme = headers_for(limited, "acme")
    paths = ["/api/tasks", "/api/workers", "/api/cluster/status", "/api/tasks/task_x"]
    for index in range(60):
        response = await clients["cloudai"].get(paths[index % len(paths)], headers=acme)
        assert response.status_code in (200, 404), response.text
    for path in paths:
        error = assert_error(await clients["cloudai"].get(path, headers=acme), 429, "RATE_LIMITED")
        assert error["details"]["limit"] == 60
    assert (await clients["grey"].get("/v1/tasks", headers=acme)).status_code == 200


async def test_anonymous_calls_are_limited_per_client_address(tmp_path: Path) -> None:
    limits = RateLimits.model_validate({"apis": {"cloudai": {"tasks_read": 2}}})
    services = _open(tmp_path, limits, anonymous_tenants={"cloudai": "acme"})
    try:
        app = Gateway.build(services, CLOUDAI).rest
        one = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("10.0.0.1", 1)), base_url="http://t"
        )
        two = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("10.0.0.2", 1)), base_url="http://t"
        )
        async with one, two:
            for _ in range(2):
                assert (await one.get("/api/tasks")).status_code == 200
            assert_error(await one.get("/api/tasks"), 429, "RATE_LIMITED")
            assert (await two.get("/api/tasks")).status_code == 200
    finally:
        services.close()


def test_the_limits_come_from_the_cluster_config(tmp_path: Path) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text(
        "rate_limits:\n  apis:\n    cloudai:\n      submit: 100\n      websocket_connections: 20\n"
    )
    limits = load_cluster_config(config).rate_limits.for_api("cloudai")
    assert limits is not None
    assert (limits.submit, limits.tasks_read, limits.websocket_connections) == (100, 60, 20)
    defaults = ClusterConfig.default().rate_limits.for_api("cloudai")
    assert defaults is not None
    assert (defaults.submit, defaults.tasks_read, defaults.websocket_connections) == (10, 60, 5)
    assert ClusterConfig.default().rate_limits.for_api("grey") is None
    limiter = RateLimiter(load_cluster_config(config).rate_limits)
    own = limiter.api_limits("cloudai")
    assert own is not None and own.websocket_connections == 20  # what /ws/telemetry reads
    assert limiter.api_limits("grey") is None
