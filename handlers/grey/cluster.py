"""Handlers of the cluster operations: health, the tenant's usage, nodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from generated.grey import models
from handlers.grey.views import node_view
from runtime.api.context import RequestContext
from runtime.api.errors import ApiError
from runtime.execution import host
from runtime.services import Services
from runtime.services.cluster import coordinator, problems
from runtime.store import LeaseRecord, NodeRecord
from runtime.store.errors import is_unavailable


def _utilization(nodes: list[NodeRecord]) -> models.Utilization:
    """Mean of what live nodes last reported; this host's figures if none reports any."""
    reports = [n.info for n in nodes if n.status != "down" and n.info and "cpu_percent" in n.info]
    if not reports:
        return models.Utilization(cpu_percent=host.cpu_percent(), memory_percent=host.memory_percent())
    return models.Utilization(
        cpu_percent=round(sum(float(r["cpu_percent"]) for r in reports) / len(reports), 1),
        memory_percent=round(sum(float(r["memory_percent"]) for r in reports) / len(reports), 1),
    )


def _consensus(lease: LeaseRecord | None, nodes: list[NodeRecord], now: datetime) -> models.ConsensusStatus:
    """The coordinator lease (runtime.store.coordination): leader, term, expiry, liveness."""
    found = coordinator(lease, nodes, now)
    return models.ConsensusStatus(
        leader=found.leader,
        term=found.term,
        quorum_satisfied=found.live,
        members=found.members,
        lease_expires_at=found.lease_expires_at,
        leader_live=found.live,
    )


def _health(services: Services) -> models.ClusterHealth:
    """`healthy` is false when work cannot run (runtime.services.cluster.problems); a
    coordinator being taken over does not stop work, so `consensus` says it apart."""
    store = services.store
    nodes = store.nodes.list()
    by_status = {
        status: sum(1 for n in nodes if n.status == status)
        for status in ("active", "draining", "quarantined", "down")
    }
    oldest = store.figures.oldest_pending_created_at()
    now = datetime.now(UTC)
    last_hour = store.figures.completed_since(now - timedelta(hours=1))
    last_minute = store.figures.completed_since(now - timedelta(minutes=1))
    pending: dict[str, int] = {}
    for (pool, _), count in store.figures.pending_by_queue().items():
        pending[pool] = pending.get(pool, 0) + count
    lease = services.runtime.coordinator()
    depth = services.runtime.queue_depth()
    found = problems(nodes, pending, broker_reachable=depth is not None)
    return models.ClusterHealth(
        healthy=not found,
        problems=found,
        version=services.version,
        nodes=models.NodeCounts(total=len(nodes), **by_status),
        consensus=_consensus(lease, nodes, now),
        queue=models.QueueStatus(
            depth=depth or 0,
            oldest_task_seconds=round((now - oldest).total_seconds(), 3) if oldest else 0.0,
        ),
        utilization=_utilization(nodes),
        throughput=models.Throughput(tasks_per_second=round(last_minute / 60, 3), tasks_last_hour=last_hour),
    )


def _unreachable_store(services: Services) -> models.ClusterHealth:
    """What can be said while the store cannot be read: not healthy, nothing known."""
    depth = services.runtime.queue_depth()
    return models.ClusterHealth(
        healthy=False,
        problems=["store unreachable"] + ([] if depth is not None else ["broker unreachable"]),
        version=services.version,
        nodes=models.NodeCounts(total=0, active=0, draining=0, quarantined=0, down=0),
        queue=models.QueueStatus(depth=depth or 0, oldest_task_seconds=0.0),
        utilization=_utilization([]),
        throughput=models.Throughput(tasks_per_second=0.0, tasks_last_hour=0),
    )


async def get_cluster_health(
    request: models.GetClusterHealthInput, ctx: RequestContext
) -> models.ClusterHealth:
    try:
        return await ctx.services.blocking.run(_health, ctx.services)
    except Exception as error:
        if not is_unavailable(error):
            raise
        return await ctx.services.blocking.run(_unreachable_store, ctx.services)


def _usage(ctx: RequestContext) -> models.ResourceUsage:
    """Used: what the tenant's running tasks requested, and its unfinished tasks against
    max_queue_depth. `throttled`: a pending task of the tenant cannot start now within its
    quotas (a claim would refuse it: runtime.store.admission), or a submit window is spent."""
    store = ctx.services.store
    quotas = ctx.services.quotas.read(ctx.tenant_id)
    used = store.figures.tenant_usage(ctx.tenant_id)

    def usage(limit: float, used: float) -> models.QuotaUsage:
        return models.QuotaUsage(limit=limit, used=used, available=max(0.0, limit - used))

    window = ctx.services.limiter.peek(ctx.tenant_id, "submit")
    return models.ResourceUsage(
        tenant_id=ctx.tenant_id,
        quotas=models.QuotaUsages(
            cpu_cores=usage(quotas.cpu_cores, used.cpu),
            memory_gb=usage(quotas.memory_gb, used.memory_gb),
            max_concurrent_tasks=usage(quotas.max_concurrent_tasks, used.running),
            max_queue_depth=usage(quotas.max_queue_depth, used.running + used.pending),
        ),
        rate_limits=models.RateLimitUsages(
            submit_rate=None
            if window is None  # unlimited in the cluster config
            else models.WindowUsage(
                limit=window.limit,
                current=window.limit - window.remaining,
                reset_at=datetime.fromtimestamp(window.reset_at, UTC),
            )
        ),
        throttled=used.holds_back(quotas) or (window is not None and window.remaining <= 0),
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


def _set_node_status(ctx: RequestContext, node_id: str, status: str) -> models.Node:
    nodes = ctx.services.store.nodes
    node = nodes.get(node_id)
    if node is None:
        raise ApiError("not_found", f"Node {node_id} does not exist", {"node_id": node_id})
    if node.status == "down":
        message = f"Node {node_id} is down; it registers again when it restarts"
        raise ApiError("conflict", message, {"status": node.status})
    nodes.set_status(node_id, status)
    changed = nodes.get(node_id)
    assert changed is not None
    return node_view(changed)


async def quarantine_node(request: models.QuarantineNodeInput, ctx: RequestContext) -> models.Node:
    """POST /v1/cluster/nodes/{node_id}/quarantine: the node takes no new work (next heartbeat)."""
    return await ctx.services.blocking.run(_set_node_status, ctx, request.node_id, "quarantined")


async def drain_node(request: models.DrainNodeInput, ctx: RequestContext) -> models.Node:
    """POST /v1/cluster/nodes/{node_id}/drain: no new work; running tasks finish."""
    return await ctx.services.blocking.run(_set_node_status, ctx, request.node_id, "draining")


async def activate_node(request: models.ActivateNodeInput, ctx: RequestContext) -> models.Node:
    """POST /v1/cluster/nodes/{node_id}/activate: back in service."""
    return await ctx.services.blocking.run(_set_node_status, ctx, request.node_id, "active")
