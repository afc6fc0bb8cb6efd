"""Handlers of credentials: the token exchange (OpenMCP Chain's) and API keys."""

from __future__ import annotations

from datetime import UTC, datetime

from generated.grey import models
from runtime.api.context import RequestContext
from runtime.api.errors import ApiError
from runtime.services.auth import PLATFORM_SCOPE
from runtime.store import ApiKeyRecord


async def create_token(request: models.CreateTokenInput, ctx: RequestContext) -> models.AuthToken:
    token, expires_at = await ctx.services.blocking.run(
        ctx.services.auth.issue_token, request.workspace_id, request.workspace_secret, ctx.client
    )
    return models.AuthToken(
        access_token=token,
        token_type="Bearer",
        expires_at=expires_at,
        expires_in=int((expires_at - datetime.now(UTC)).total_seconds()),
    )


def _tenant_in_reach(ctx: RequestContext, tenant_id: str | None) -> str:
    """The caller's tenant, or another one for `platform:admin` alone."""
    chosen = tenant_id or ctx.tenant_id
    if chosen != ctx.tenant_id and PLATFORM_SCOPE not in ctx.principal_scopes:
        raise ApiError(
            "forbidden",
            f"Another tenant's keys need scope {PLATFORM_SCOPE}",
            {"required_scopes": [PLATFORM_SCOPE]},
        )
    return chosen


def _key_view(record: ApiKeyRecord) -> models.ApiKey:
    return models.ApiKey(
        key_id=record.key_id,
        tenant_id=record.tenant_id,
        scopes=sorted(record.scopes),
        created_at=record.created_at,
        revoked=record.revoked,
        description=record.description,
    )


async def list_keys(request: models.ListKeysInput, ctx: RequestContext) -> models.ApiKeyList:
    tenant_id = _tenant_in_reach(ctx, request.tenant_id)
    records = await ctx.services.blocking.run(ctx.services.store.keys.list, tenant_id)
    return models.ApiKeyList(keys=[_key_view(record) for record in records])


async def create_key(request: models.CreateKeyInput, ctx: RequestContext) -> models.CreatedApiKey:
    """A key never grants more than the credential that minted it."""
    scopes = frozenset(request.scopes)
    beyond = scopes - ctx.principal_scopes
    if beyond:
        raise ApiError(
            "forbidden",
            f"A new key cannot have scopes the caller lacks: {', '.join(sorted(beyond))}",
            {"scopes": sorted(beyond)},
        )
    key, record = await ctx.services.blocking.run(
        ctx.services.auth.mint, ctx.tenant_id, scopes, request.description or ""
    )
    return models.CreatedApiKey(
        key_id=record.key_id,
        key=key,
        tenant_id=record.tenant_id,
        scopes=sorted(record.scopes),
        created_at=record.created_at,
    )


async def revoke_key(request: models.RevokeKeyInput, ctx: RequestContext) -> None:
    """Another tenant's key answers 404 as if absent, unless the caller has `platform:admin`."""
    tenant_id = None if PLATFORM_SCOPE in ctx.principal_scopes else ctx.tenant_id
    if not await ctx.services.blocking.run(ctx.services.auth.revoke, tenant_id, request.key_id):
        raise ApiError("not_found", f"Key {request.key_id} does not exist", {"key_id": request.key_id})
