"""Handler of the token exchange (seed 001): tenant credentials → short-lived JWT."""

from __future__ import annotations

from datetime import UTC, datetime

from generated import models
from runtime.api.context import RequestContext


async def create_token(request: models.CreateTokenInput, ctx: RequestContext) -> models.AuthToken:
    token, expires_at = await ctx.services.blocking.run(
        ctx.services.auth.issue_token, request.workspace_id, request.workspace_secret
    )
    return models.AuthToken(
        access_token=token,
        token_type="Bearer",
        expires_at=expires_at,
        expires_in=int((expires_at - datetime.now(UTC)).total_seconds()),
    )
