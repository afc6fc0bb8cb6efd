"""Handlers of the cluster operations: health, the tenant's usage, nodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from generated import models
from handlers.views import node_view
from runtime import host
from runtime.context import RequestContext
from runtime.store import Store


def _health(store: Store, version: str) -> models.ClusterHealth:
    nodes = store.nodes.list()
    by_status = {
        status: sum(1 for n in nodes if n.status == status)
        for status in ("active", "draining", "quarantined", "down")
    }
    counts = store.tasks.count_by_status()
    oldest = store.tasks.oldest_pending_created_at()
    now = datetime.now(UTC)
    last_hour = store.tasks.completed_since(now - timedelta(hours=1))
    last_minute = store.tasks.completed_since(now - timedelta(minutes=1))
    return models.ClusterHealth(
        healthy=by_status["active"] > 0,
        version=version,
        nodes=models.NodeCounts(total=len(nodes), **by_status),
        queue=models.QueueStatus(
            depth=counts.get("pending", 0),
            oldest_task_seconds=round((now - oldest).total_seconds(), 3) if oldest else 0.0,
        ),
        utilization=models.Utilization(cpu_percent=host.cpu_percent(), memory_percent=host.memory_percent()),
        throughput=models.Throughput(tasks_per_second=round(last_minute / 60, 3), tasks_last_hour=last_hour),
    )


async def get_cluster_health(
    request: models.GetClusterHealthInput, ctx: RequestContext
) -> models.ClusterHealth:
    return await ctx.services.blocking.run(_health, ctx.services.store, ctx.services.version)


def _usage(ctx: RequestContext) -> models.ResourceUsage:
    store = ctx.services.store
    quotas = store.quotas.get(ctx.tenant_id)
    running = [t for t in store.tasks.unfinished() if t.tenant_id == ctx.tenant_id and t.status == "running"]
    cpu_used = sum(float(t.resources.get("cpu", 1)) for t in running)
    memory_used = sum(float(t.resources.get("memory_gb", 0.5)) for t in running)

    def usage(limit: float, used: float) -> models.QuotaUsage:
        return models.QuotaUsage(limit=limit, used=used, available=max(0.0, limit - used))

    window = ctx.services.limiter.peek(ctx.tenant_id, "submit")
    return models.ResourceUsage(
        tenant_id=ctx.tenant_id,
        quotas=models.QuotaUsages(
            cpu_cores=usage(quotas.cpu_cores, cpu_used),
            memory_gb=usage(quotas.memory_gb, memory_used),
            max_concurrent_tasks=usage(quotas.max_concurrent_tasks, len(running)),
        ),
        rate_limits=models.RateLimitUsages(
            submit_rate=models.WindowUsage(
                limit=window.limit,
                current=window.limit - window.remaining,
                reset_at=datetime.fromtimestamp(window.reset_at, UTC),
            )
        ),
        throttled=window.remaining <= 0,
    )


async def get_resource_usage(
    request: models.GetResourceUsageInput, ctx: RequestContext
) -> models.ResourceUsage:
    return await ctx.services.blocking.run(_usage, ctx)


async def list_nodes(request: models.ListNodesInput, ctx: RequestContext) -> models.NodeList:
    nodes = await ctx.services.blocking.run(
        lambda: ctx.services.store.nodes.list(role=request.role, status=request.status)
    )
    return models.NodeList(nodes=[node_view(node) for node in nodes])
