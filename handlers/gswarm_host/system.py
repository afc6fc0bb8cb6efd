"""Handlers of the `system` operations: placement nodes, health, metrics (runtime.services.placement)."""

from __future__ import annotations

from generated.gswarm_host import models
from runtime.api.context import RequestContext
from runtime.services import placement


async def list_nodes(request: models.ListNodesInput, ctx: RequestContext) -> models.NodeList:
    """GET /api/v1/nodes: Every placement node with its devices and capacities."""
    views = await placement.node_views(ctx.services)
    nodes = []
    for view in views:
        capabilities = view["capabilities"]
        nodes.append(
            models.Node(
                node_id=view["node_id"],
                hostname=view["hostname"],
                ip_address=view["ip_address"],
                status=view["status"],
                last_heartbeat=view["last_heartbeat"],
                capabilities=models.NodeCapabilities(
                    gpus=capabilities["gpus"],
                    storage=capabilities["storage"],
                    emulated_gpus=bool(capabilities["emulated_gpus"]),
                ),
            )
        )
    return models.NodeList(nodes=nodes)


async def get_health(request: models.GetHealthInput, ctx: RequestContext) -> models.Health:
    """GET /api/v1/health:
    Whether the host, its store and its placement nodes are up (no credentials needed)."""
    view = await ctx.services.blocking.run(placement.health_sync, ctx.services)
    return models.Health.model_validate({**view, "version": ctx.services.version})


async def get_metrics(request: models.GetMetricsInput, ctx: RequestContext) -> models.SystemMetrics:
    """GET /api/v1/metrics: Counts of models, locations, services and tasks, and device usage per node."""
    view = await ctx.services.blocking.run(placement.metrics_sync, ctx.services, ctx.tenant_id)
    return models.SystemMetrics.model_validate(view)
