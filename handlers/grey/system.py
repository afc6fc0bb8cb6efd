"""Handlers of the process endpoints: liveness and Prometheus metrics (seed 002)."""

from __future__ import annotations

import time

from generated import models
from runtime.api.context import RequestContext
from runtime.api.responses import PlainText


async def get_health(request: models.GetHealthInput, ctx: RequestContext) -> models.ServiceHealth:
    counts = await ctx.services.blocking.run(ctx.services.store.tasks.count_by_status)
    return models.ServiceHealth(
        healthy=True,
        version=ctx.services.version,
        uptime_seconds=round(time.time() - ctx.services.started_at, 3),
        stats=models.ServiceStats(active_tasks=counts.get("running", 0) + counts.get("pending", 0)),
    )


async def get_metrics(request: models.GetMetricsInput, ctx: RequestContext) -> PlainText:
    return PlainText(ctx.services.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
