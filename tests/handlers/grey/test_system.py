"""The `system` operations: `/health` and `/metrics`, public (REST only)."""

from __future__ import annotations

import httpx

from bench.serving import free_port
from runtime.gateway.app import Platform
from runtime.services import Services
from runtime.settings import Settings


async def test_health_and_metrics_need_no_credentials(rest) -> None:
    health = await rest.get("/health")
    assert health.status_code == 200 and health.json()["healthy"] is True
    metrics = await rest.get("/metrics")
    assert metrics.status_code == 200
    assert "tasks_submitted_total" in metrics.text
    assert (
        'grey_requests_total{api="grey",code="ok",operation="getHealth",transport="rest"} 1.0' in metrics.text
    )
    assert metrics.headers["content-type"].startswith("text/plain")


async def test_health_says_unhealthy_while_the_broker_cannot_be_reached(tmp_path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'grey.db'}", broker_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    services = Services.open(settings)
    try:
        transport = httpx.ASGITransport(app=Platform.build(services).rest)
        async with httpx.AsyncClient(transport=transport, base_url="http://grey.test") as rest:
            answer = await rest.get("/health")
        assert answer.status_code == 200 and answer.json()["healthy"] is False
    finally:
        services.close()
