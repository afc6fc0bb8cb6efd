"""Webhook deliveries: the coordinator sends what the store's outbox holds.

`settings.py` (GREY_WEBHOOK_*), `egress.py` (where deliveries may go), `payload.py` (body
and signatures), `sender.py` (one POST), `deliverer.py` (the duty: claim, send, settle).
The outbox itself is written by the store, in the transaction of each task's transition
(runtime/store/schema.py's trigger, runtime/store/webhook_deliveries.py).
"""

from runtime.execution.webhooks.deliverer import WebhookDeliverer
from runtime.execution.webhooks.egress import EgressPolicy, EgressRefused, Resolver
from runtime.execution.webhooks.settings import WebhookSettings

__all__ = ["EgressPolicy", "EgressRefused", "Resolver", "WebhookDeliverer", "WebhookSettings"]
