"""Handlers of the process endpoints: liveness and Prometheus metrics."""

from __future__ import annotations

from generated.grey import models
from runtime.api.context import RequestContext
from runtime.api.responses import PlainText
from runtime.services.health import process_health

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


async def get_health(request: models.GetHealthInput, ctx: RequestContext) -> models.ServiceHealth:
    """Unhealthy (still answered) while the store or the broker cannot be reached."""
    health = await process_health(ctx.services)
    return models.ServiceHealth(
        healthy=health.healthy,
        version=health.version,
        uptime_seconds=health.uptime_seconds,
        stats=models.ServiceStats(active_tasks=health.active_tasks),
    )


async def get_metrics(request: models.GetMetricsInput, ctx: RequestContext) -> PlainText:
    return PlainText(ctx.services.metrics.render(), PROMETHEUS_TEXT)
