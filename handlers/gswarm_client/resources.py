"""Handlers of the `resources` operations: the client node's storage and compute."""

from __future__ import annotations

from generated.gswarm_client import models
from runtime.api.context import RequestContext
from runtime.services import placement


async def get_resources(request: models.GetResourcesInput, ctx: RequestContext) -> models.Resources:
    """GET /api/v1/resources: Storage per device (total, used, available) and compute usage."""
    node = await ctx.services.blocking.run(placement.client_node, ctx.services)
    view = await placement.resources(ctx.services, node)
    compute = {
        name: {key: value for key, value in usage.items() if value is not None}
        | {"usage": usage.get("usage") or 0.0}
        for name, usage in view["compute"].items()
    }
    return models.Resources.model_validate({"node": node, "storage": view["storage"], "compute": compute})
