"""Handlers of the `serving` operations: placement-aware predict (runtime.services.model_services)."""

from __future__ import annotations

from generated.gswarm_host import models
from runtime.api.context import RequestContext
from runtime.services import model_services


async def predict(request: models.PredictInput, ctx: RequestContext) -> models.PredictResponse:
    """POST /api/v1/models/{model_name}/predict: Run the model on a replica that has it loaded
    (placement-aware), cold-loading one if none has."""
    answer = await model_services.predict(
        ctx.services, ctx.tenant_id, request.model_name, request.inputs, request.parameters
    )
    return models.PredictResponse.model_validate(answer)
