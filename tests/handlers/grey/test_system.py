"""The `system` operations: `/health` and `/metrics`, public (REST only)."""

from __future__ import annotations


async def test_health_and_metrics_need_no_credentials(rest) -> None:
    health = await rest.get("/health")
    assert health.status_code == 200 and health.json()["healthy"] is True
    metrics = await rest.get("/metrics")
    assert metrics.status_code == 200
    assert "tasks_submitted_total" in metrics.text
    assert 'grey_requests_total{code="ok",operation="getHealth",transport="rest"} 1.0' in metrics.text
    assert metrics.headers["content-type"].startswith("text/plain")
