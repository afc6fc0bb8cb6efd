"""Handlers of the `services` operations: the tenant's model services (runtime.services.model_services)."""

from __future__ import annotations

from generated.gswarm_host import models
from runtime.api.context import RequestContext
from runtime.services import model_services


async def list_services(request: models.ListServicesInput, ctx: RequestContext) -> models.ServiceList:
    """GET /api/v1/services: The tenant's model services (one per replica), newest first."""
    records = await model_services.list_services(ctx.services, ctx.tenant_id)
    return models.ServiceList(
        services=[models.Service.model_validate(model_services.view(r)) for r in records]
    )


async def deploy_service(request: models.DeployServiceInput, ctx: RequestContext) -> models.Deployment:
    """POST /api/v1/services: Deploy a model as `config.replicas` serving processes over `nodes`."""
    config = request.config or models.ServiceConfig()
    records = await model_services.deploy(
        ctx.services,
        ctx.tenant_id,
        request.model_name,
        api="gswarm_host",
        nodes=list(request.nodes) if request.nodes else None,
        device=request.device,
        port=config.port,
        replicas=config.replicas,
        framework=config.framework,
        config=config.model_dump(exclude_none=True),
    )
    return models.Deployment(
        model_name=request.model_name,
        services=[models.Service.model_validate(model_services.view(r)) for r in records],
    )


async def get_service(request: models.GetServiceInput, ctx: RequestContext) -> models.Service:
    """GET /api/v1/services/{service_id}: One service."""
    record = await model_services.get(ctx.services, ctx.tenant_id, request.service_id)
    return models.Service.model_validate(model_services.view(record))


async def stop_service(request: models.StopServiceInput, ctx: RequestContext) -> None:
    """DELETE /api/v1/services/{service_id}: Stop a service (its serving process ends)."""
    await model_services.stop(ctx.services, ctx.tenant_id, request.service_id, api="gswarm_host")
