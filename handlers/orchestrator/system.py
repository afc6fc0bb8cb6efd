"""The Orchestrator's `/health` and `/metrics` (the reference's tasks_submitted_total,
tasks_completed_total and task_execution_time_ms, labelled by API)."""

from __future__ import annotations

from generated.orchestrator import models
from runtime.api.context import RequestContext
from runtime.api.responses import PlainText
from runtime.services.health import process_health

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


async def get_health(request: models.GetHealthInput, ctx: RequestContext) -> models.Health:
    health = await process_health(ctx.services)
    estimate = ctx.services.metrics.estimated_execution_ms(ctx.api)
    figures = {"median_execution_time_ms": estimate} if estimate is not None else {}
    return models.Health(
        healthy=health.healthy,
        version=health.version,
        uptime_seconds=health.uptime_seconds,
        stats=models.Stats(active_tasks=health.active_tasks, metrics=figures),
    )


async def get_metrics(request: models.GetMetricsInput, ctx: RequestContext) -> PlainText:
    return PlainText(ctx.services.metrics.render(), PROMETHEUS_TEXT)
