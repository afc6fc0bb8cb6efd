"""Handlers of the webhook operations: subscriptions, their pending deliveries and dead letters.

Deliveries themselves are the coordinator's (runtime/execution/webhooks): at least once
from the store's outbox, signed with `X-Grey-Signature` and the Standard Webhooks headers.
"""

from __future__ import annotations

import asyncio

from generated.grey import models
from handlers.grey.views import delivery_view, webhook_view
from runtime.api.context import RequestContext
from runtime.api.errors import ApiError
from runtime.store.coltypes import utc_now
from runtime.store.cursor import decode_cursor, encode_cursor
from runtime.store.errors import InvalidCursor

#: How long registration waits for the URL's host to resolve (unresolved: accepted, and
#: checked again at every attempt).
RESOLVE_SECONDS = 2.0


async def create_webhook(request: models.CreateWebhookInput, ctx: RequestContext) -> models.Webhook:
    """Refuses a URL whose host is, or resolves to, an address deliveries may not reach."""
    policy = ctx.services.runtime.webhooks.policy
    try:  # not the store's pool: a slow DNS answer must not hold a store thread
        refusal = await asyncio.wait_for(asyncio.to_thread(policy.check, request.url), RESOLVE_SECONDS)
    except TimeoutError:
        refusal = None
    if refusal is not None:
        raise ApiError("invalid_payload", f"url: {refusal}", {"field": "url"})
    webhook = await ctx.services.blocking.run(
        ctx.services.store.webhooks.add, ctx.tenant_id, request.url, list(request.events), request.secret
    )
    return webhook_view(webhook)


async def list_webhooks(request: models.ListWebhooksInput, ctx: RequestContext) -> models.WebhookList:
    store = ctx.services.store
    webhooks = await ctx.services.blocking.run(store.webhooks.list, ctx.tenant_id)
    disabled = await ctx.services.blocking.run(store.webhooks.deliveries.disabled, ctx.tenant_id)
    return models.WebhookList(webhooks=[webhook_view(w, disabled.get(w.webhook_id)) for w in webhooks])


async def delete_webhook(request: models.DeleteWebhookInput, ctx: RequestContext) -> None:
    deleted = await ctx.services.blocking.run(
        ctx.services.store.webhooks.delete, ctx.tenant_id, request.webhook_id
    )
    if not deleted:
        raise _not_found(request.webhook_id)


async def list_webhook_deliveries(
    request: models.ListWebhookDeliveriesInput, ctx: RequestContext
) -> models.WebhookDeliveryList:
    await _require_webhook(ctx, request.webhook_id)
    deliveries = ctx.services.store.webhooks.deliveries
    pending = await ctx.services.blocking.run(deliveries.pending, ctx.tenant_id, request.webhook_id)
    return models.WebhookDeliveryList(deliveries=[delivery_view(d) for d in pending], has_more=False)


async def list_webhook_dead_letters(
    request: models.ListWebhookDeadLettersInput, ctx: RequestContext
) -> models.WebhookDeliveryList:
    try:
        before = decode_cursor(request.cursor) if request.cursor is not None else None
    except InvalidCursor:
        raise ApiError(
            "invalid_parameter", "cursor is not one this API issued", {"parameter": "cursor"}
        ) from None
    await _require_webhook(ctx, request.webhook_id)
    deliveries = ctx.services.store.webhooks.deliveries
    dead, has_more = await ctx.services.blocking.run(
        deliveries.dead_letters, ctx.tenant_id, request.webhook_id, request.limit, before
    )
    last = dead[-1] if dead and has_more else None
    return models.WebhookDeliveryList(
        deliveries=[delivery_view(d) for d in dead],
        has_more=has_more,
        next_cursor=encode_cursor(last.dead_at, last.delivery_id) if last and last.dead_at else None,
    )


async def redeliver_webhook_delivery(
    request: models.RedeliverWebhookDeliveryInput, ctx: RequestContext
) -> models.WebhookDelivery:
    deliveries = ctx.services.store.webhooks.deliveries
    delivery = await ctx.services.blocking.run(
        deliveries.redeliver, ctx.tenant_id, request.webhook_id, request.delivery_id, utc_now()
    )
    if delivery is None:
        raise ApiError(
            "not_found",
            f"Webhook {request.webhook_id} has no dead letter {request.delivery_id}",
            {"webhook_id": request.webhook_id, "delivery_id": request.delivery_id},
        )
    return delivery_view(delivery)


async def _require_webhook(ctx: RequestContext, webhook_id: str) -> None:
    found = await ctx.services.blocking.run(ctx.services.store.webhooks.get, ctx.tenant_id, webhook_id)
    if found is None:
        raise _not_found(webhook_id)


def _not_found(webhook_id: str) -> ApiError:
    return ApiError("not_found", f"Webhook {webhook_id} does not exist", {"webhook_id": webhook_id})
