"""CloudAI's cluster status: the active workers' resources summed, the tenant's tasks counted."""

from __future__ import annotations

from generated.cloudai import models
from runtime.api.context import RequestContext
from runtime.services.workers import cluster_totals


async def get_cluster_status(
    request: models.GetClusterStatusInput, ctx: RequestContext
) -> models.ClusterStatus:
    """Resources are the whole cluster's (what any tenant could be placed on); task counts are
    the caller's tenant's, in CloudAI's words (queued = Grey's pending; failed includes timeout)."""
    totals = await ctx.services.blocking.run(cluster_totals, ctx.services.store, ctx.tenant_id)
    counts = totals.tasks_by_status
    return models.ClusterStatus(
        total_workers=totals.total_workers,
        active_workers=totals.active_workers,
        total_cpu=totals.total.cpu,
        total_memory=totals.total.memory_gb,
        total_storage=totals.total.storage_gb,
        total_gpu=totals.total.gpu,
        available_cpu=totals.available.cpu,
        available_memory=totals.available.memory_gb,
        available_storage=totals.available.storage_gb,
        available_gpu=totals.available.gpu,
        total_tasks=totals.total_tasks,
        running_tasks=counts.get("running", 0),
        queued_tasks=counts.get("pending", 0),
        completed_tasks=counts.get("completed", 0),
        failed_tasks=counts.get("failed", 0) + counts.get("timeout", 0),
        cancelled_tasks=counts.get("cancelled", 0),
    )
