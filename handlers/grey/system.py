"""Handlers of the process endpoints: liveness and Prometheus metrics (the Orchestrator's)."""

from __future__ import annotations

import time

from generated.grey import models
from runtime.api.context import RequestContext
from runtime.api.responses import PlainText
from runtime.store.errors import is_unavailable


async def get_health(request: models.GetHealthInput, ctx: RequestContext) -> models.ServiceHealth:
    """Unhealthy (still answered) while the store or the broker cannot be reached: this gateway
    can take no work then."""
    try:
        counts = await ctx.services.blocking.run(ctx.services.store.figures.count_by_status)
    except Exception as error:
        if not is_unavailable(error):
            raise
        counts = None
    broker_answers = await ctx.services.blocking.run(ctx.services.runtime.queue_depth) is not None
    return models.ServiceHealth(
        healthy=counts is not None and broker_answers,
        version=ctx.services.version,
        uptime_seconds=round(time.time() - ctx.services.started_at, 3),
        stats=models.ServiceStats(
            active_tasks=counts.get("running", 0) + counts.get("pending", 0) if counts else 0
        ),
    )


async def get_metrics(request: models.GetMetricsInput, ctx: RequestContext) -> PlainText:
    return PlainText(ctx.services.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
