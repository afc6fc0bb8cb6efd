"""Handlers of the governance operations: quotas and rate limits."""

from __future__ import annotations

from datetime import UTC, datetime

from generated import models
from handlers.grey.views import quotas_view
from runtime.api.context import RequestContext
from runtime.services.ratelimit import Window

_QUOTA_FIELDS = (
    "cpu_cores",
    "memory_gb",
    "max_concurrent_tasks",
    "max_queue_depth",
    "submit_rate_per_second",
)


async def get_quotas(request: models.GetQuotasInput, ctx: RequestContext) -> models.TenantQuotas:
    quotas = await ctx.services.blocking.run(ctx.services.store.quotas.get, ctx.tenant_id)
    return quotas_view(quotas)


async def update_quotas(request: models.UpdateQuotasInput, ctx: RequestContext) -> models.TenantQuotas:
    """Admins change any tenant's quotas (their own by default); omitted fields keep their value."""
    tenant_id = request.tenant_id or ctx.tenant_id
    changes = {name: value for name in _QUOTA_FIELDS if (value := getattr(request, name)) is not None}
    quotas = await ctx.services.blocking.run(
        ctx.services.store.quotas.update, tenant_id, changes, request.reason
    )
    return quotas_view(quotas)


def _window(window: Window | None, seconds: int) -> models.RateLimitWindow | None:
    if window is None:  # unlimited in the cluster config
        return None
    return models.RateLimitWindow(
        limit=window.limit,
        remaining=window.remaining,
        reset_at=datetime.fromtimestamp(window.reset_at, UTC),
        window_seconds=seconds,
    )


async def get_rate_limits(request: models.GetRateLimitsInput, ctx: RequestContext) -> models.RateLimitStatus:
    limiter = ctx.services.limiter
    return models.RateLimitStatus(
        submit=_window(limiter.peek(ctx.tenant_id, "submit"), limiter.window_seconds),
        api=_window(limiter.peek(ctx.tenant_id, "other"), limiter.window_seconds),
    )
