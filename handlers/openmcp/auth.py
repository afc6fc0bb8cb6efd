"""OpenMCP Chain's token exchange: workspace credentials → a short-lived bearer token."""

from __future__ import annotations

from generated.openmcp import models
from runtime.api.context import RequestContext


async def authenticate(request: models.AuthenticateInput, ctx: RequestContext) -> models.AuthResponse:
    """A workspace is a Grey tenant and its secret one of the tenant's API keys; the token
    carries that key's scopes (`POST /v1/auth/token`, gRPC `AuthService.Authenticate`)."""
    token, expires_at = await ctx.services.blocking.run(
        ctx.services.auth.issue_token, request.workspace_id, request.workspace_secret, ctx.client
    )
    return models.AuthResponse(access_token=token, expires_at=expires_at)
