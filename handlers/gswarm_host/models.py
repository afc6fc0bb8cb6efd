"""Handlers of the `models` operations: the tenant's model registry (runtime.services.placement)."""

from __future__ import annotations

from generated.gswarm_host import models
from runtime.api.context import RequestContext
from runtime.services import model_services, placement


async def list_models(request: models.ListModelsInput, ctx: RequestContext) -> models.ModelList:
    """GET /api/v1/models: The tenant's registered models, filtered and paged."""
    views, total = await placement.list_model_views(
        ctx.services,
        ctx.tenant_id,
        model_type=request.type,
        location=request.location,
        status=request.status,
        page=request.page,
        per_page=request.per_page,
    )
    return models.ModelList(
        models=[models.Model.model_validate(view) for view in views],
        total=total,
        page=request.page,
        per_page=request.per_page,
    )


async def register_model(request: models.RegisterModelInput, ctx: RequestContext) -> models.ModelDetail:
    """POST /api/v1/models: Register a model (no bytes yet; download it through the client API)."""
    view = await placement.register_model(
        ctx.services,
        ctx.tenant_id,
        request.model_name,
        request.model_type,
        request.model_size,
        request.source_url,
        request.metadata,
    )
    return models.ModelDetail.model_validate(view)


async def get_model(request: models.GetModelInput, ctx: RequestContext) -> models.ModelDetail:
    """GET /api/v1/models/{model_name}: One model with its locations, services and metadata."""
    return models.ModelDetail.model_validate(
        await placement.model_view(ctx.services, ctx.tenant_id, request.model_name)
    )


async def delete_model(request: models.DeleteModelInput, ctx: RequestContext) -> None:
    """DELETE /api/v1/models/{model_name}: Unregister a model and remove its bytes from every device."""
    if request.force:
        await model_services.stop_model(ctx.services, ctx.tenant_id, request.model_name, api=ctx.api)
    await placement.delete_model(ctx.services, ctx.tenant_id, request.model_name, force=request.force)
