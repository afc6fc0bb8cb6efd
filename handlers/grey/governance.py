"""Handlers of the governance operations: quotas and rate limits."""

from __future__ import annotations

from datetime import UTC, datetime

from generated.grey import models
from handlers.grey.views import quotas_view
from runtime.api.context import RequestContext
from runtime.api.errors import ApiError
from runtime.services.auth import PLATFORM_SCOPE
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
    """`cluster:admin` changes its own tenant's quotas; another tenant's needs `platform:admin`.
    Omitted fields keep their value. Enforced from then on: max_queue_depth at submit (503
    `queue_full`), submit_rate_per_second (429 `rate_limited`, other gateways within a
    second), max_concurrent_tasks / cpu_cores / memory_gb when workers claim tasks (beyond
    them tasks wait pending; GET /v1/cluster/usage then says `throttled`). A task already
    running is never stopped by a lowered quota."""
    tenant_id = request.tenant_id or ctx.tenant_id
    if tenant_id != ctx.tenant_id and PLATFORM_SCOPE not in ctx.principal_scopes:
        raise ApiError(
            "forbidden",
            f"Changing another tenant's quotas needs scope {PLATFORM_SCOPE}",
            {"required_scopes": [PLATFORM_SCOPE]},
        )
    changes = {name: value for name in _QUOTA_FIELDS if (value := getattr(request, name)) is not None}
    quotas = await ctx.services.blocking.run(
        ctx.services.store.quotas.update, tenant_id, changes, request.reason
    )
    ctx.services.quotas.forget(tenant_id)  # this gateway applies them from the next submit
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
