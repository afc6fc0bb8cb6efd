"""Handlers of the webhook operations. Deliveries (HMAC-signed) come with the runtime."""

from __future__ import annotations

from generated.grey import models
from handlers.grey.views import webhook_view
from runtime.api.context import RequestContext
from runtime.api.errors import ApiError


async def create_webhook(request: models.CreateWebhookInput, ctx: RequestContext) -> models.Webhook:
    webhook = await ctx.services.blocking.run(
        ctx.services.store.webhooks.add, ctx.tenant_id, request.url, list(request.events), request.secret
    )
    return webhook_view(webhook)


async def list_webhooks(request: models.ListWebhooksInput, ctx: RequestContext) -> models.WebhookList:
    webhooks = await ctx.services.blocking.run(ctx.services.store.webhooks.list, ctx.tenant_id)
    return models.WebhookList(webhooks=[webhook_view(w) for w in webhooks])


async def delete_webhook(request: models.DeleteWebhookInput, ctx: RequestContext) -> None:
    deleted = await ctx.services.blocking.run(
        ctx.services.store.webhooks.delete, ctx.tenant_id, request.webhook_id
    )
    if not deleted:
        raise ApiError(
            "not_found", f"Webhook {request.webhook_id} does not exist", {"webhook_id": request.webhook_id}
        )
