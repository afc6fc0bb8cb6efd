"""Handlers of the `locations` operations: where a model's bytes are (runtime.services.placement)."""

from __future__ import annotations

from generated.gswarm_host import models
from runtime.api.context import RequestContext
from runtime.services import placement


async def get_model_locations(
    request: models.GetModelLocationsInput, ctx: RequestContext
) -> models.LocationList:
    """GET /api/v1/models/{model_name}/locations:
    Where a model's bytes are (a location is listed only while its bytes are there)."""
    found = await ctx.services.blocking.run(
        placement.locations, ctx.services, ctx.tenant_id, request.model_name
    )
    return models.LocationList(
        model_name=request.model_name,
        locations=[models.Location.model_validate(location.as_dict()) for location in found],
    )


async def add_model_location(request: models.AddModelLocationInput, ctx: RequestContext) -> models.Location:
    """POST /api/v1/models/{model_name}/locations: Record a location whose bytes are already on the device."""
    view = await placement.add_location(
        ctx.services, ctx.tenant_id, request.model_name, request.device, request.status or "ready"
    )
    return models.Location.model_validate(view)


async def remove_model_location(request: models.RemoveModelLocationInput, ctx: RequestContext) -> None:
    """DELETE /api/v1/models/{model_name}/locations/{device}:
    Remove a model's bytes from one device (`node1:gpu0`)."""
    await placement.remove_location(ctx.services, ctx.tenant_id, request.model_name, request.device)
