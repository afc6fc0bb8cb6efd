"""gswarm's profiler control API: sessions (cluster-wide), the sampling nodes, their latest frames.

Reads take `cluster:read`, start and stop `cluster:admin` (the contract's scopes, checked by
the gateway before these run). Every call is one or two store reads or writes, run off the
event loop.
"""

from __future__ import annotations

from generated.gswarm_profiler import models
from handlers.gswarm_profiler import views
from runtime.api.context import RequestContext
from runtime.api.errors import ApiError
from runtime.services import profiler
from runtime.services.profiler import SessionActive, SessionNotActive


async def get_status(request: models.GetStatusInput, ctx: RequestContext) -> models.ProfilerStatus:
    view = await ctx.services.blocking.run(profiler.status, ctx.services.store)
    return views.status(view)


async def start_profiling(
    request: models.StartProfilingInput, ctx: RequestContext
) -> models.ProfilingSession:
    """201 with the new session; 409 CONFLICT while a session of that name is active."""
    try:
        record = await ctx.services.blocking.run(
            profiler.start,
            ctx.services.store,
            request.name,
            sampling_frequency_ms=request.sampling_frequency_ms,
            enable_bandwidth_profiling=request.enable_bandwidth_profiling,
            enable_nvlink_profiling=request.enable_nvlink_profiling,
            started_by=ctx.tenant_id,
        )
    except SessionActive as error:
        raise ApiError("conflict", str(error), {"name": request.name}) from None
    return views.session(record)


async def stop_profiling(request: models.StopProfilingInput, ctx: RequestContext) -> models.ProfilingSession:
    """The stopped session with its final count; 404 NOT_FOUND when none of that name is active."""
    try:
        record = await ctx.services.blocking.run(profiler.stop, ctx.services.store, request.name)
    except SessionNotActive as error:
        raise ApiError("not_found", str(error), {"name": request.name}) from None
    return views.session(record)


async def list_sessions(request: models.ListSessionsInput, ctx: RequestContext) -> models.SessionList:
    records = await ctx.services.blocking.run(
        profiler.sessions, ctx.services.store, active=request.active, limit=request.limit
    )
    return models.SessionList(sessions=[views.session(record) for record in records])


async def list_clients(request: models.ListClientsInput, ctx: RequestContext) -> models.ClientList:
    found = await ctx.services.blocking.run(profiler.clients, ctx.services.store)
    return models.ClientList(clients=[views.client(view) for view in found])


async def get_latest_metrics(
    request: models.GetLatestMetricsInput, ctx: RequestContext
) -> models.LatestMetrics:
    frames = await ctx.services.blocking.run(profiler.latest_frames, ctx.services.store)
    shown = [views.node_metrics(frame) for frame in frames]
    return models.LatestMetrics(metrics=[metrics for metrics in shown if metrics is not None])
