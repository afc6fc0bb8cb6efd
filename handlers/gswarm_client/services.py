"""Handlers of the `services` operations: this node's model services (runtime.services.model_services).

The client API acts for one node (`GREY_GSWARM_CLIENT_NODE`, default the first placement
node): a service is started there (or on the node its `device` names), and only that
node's services are stopped or probed through it (another node's: 404, as for the host API
another tenant's).
"""

from __future__ import annotations

from generated.gswarm_client import models
from runtime.api.context import RequestContext
from runtime.execution.serving.errors import ServiceNotFound
from runtime.services import model_services, placement
from runtime.store.model_services import ServiceRecord


async def _this_node(ctx: RequestContext) -> str:
    return await ctx.services.blocking.run(placement.client_node, ctx.services)


async def _own(ctx: RequestContext, service_id: str) -> ServiceRecord:
    record = await model_services.get(ctx.services, ctx.tenant_id, service_id)
    if record.node_id != await _this_node(ctx):
        raise ServiceNotFound(f"service {service_id!r} is not a service of this node", service_id=service_id)
    return record


async def start_service(request: models.StartServiceInput, ctx: RequestContext) -> models.Service:
    """POST /api/v1/services: Start a serving process for a model on one device of this node."""
    config = request.config or models.ServiceRuntimeConfig()
    qualified = request.device is not None and ":" in request.device
    (record,) = await model_services.deploy(
        ctx.services,
        ctx.tenant_id,
        request.model_name,
        api="gswarm_client",
        nodes=None if qualified else [await _this_node(ctx)],
        device=request.device,
        port=request.port,
        replicas=1,
        framework=config.framework,
        config=config.model_dump(exclude_none=True),
    )
    return models.Service.model_validate(model_services.view(record))


async def stop_service(request: models.StopServiceInput, ctx: RequestContext) -> None:
    """DELETE /api/v1/services/{service_id}: Stop a service of this node."""
    await _own(ctx, request.service_id)
    await model_services.stop(ctx.services, ctx.tenant_id, request.service_id, api="gswarm_client")


async def get_service_status(
    request: models.GetServiceStatusInput, ctx: RequestContext
) -> models.ServiceStatusDetail:
    """GET /api/v1/services/{service_id}/status: A service's state, health and counters."""
    await _own(ctx, request.service_id)
    record, probe = await model_services.status(ctx.services, ctx.tenant_id, request.service_id)
    detail = model_services.view(record)
    detail.update(
        healthy=probe.healthy,
        uptime=probe.uptime,
        load_time=probe.load_time if probe.load_time is not None else record.load_time,
        requests_served=probe.requests_served,
    )
    return models.ServiceStatusDetail.model_validate(detail)
