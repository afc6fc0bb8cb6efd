"""What a delivery sends: the reference's body and both signatures.

Body (Grey Distributed's "Webhook Payload"): `{"event", "timestamp", "task": {"task_id",
"status", "result", ...}}`, compact JSON in ASCII, fixed at the first attempt and resent
as is. Headers:

- `X-Grey-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with the secret>`: what the
  reference's `verify_webhook(payload, signature, secret)` checks;
- Standard Webhooks: `webhook-id` (the delivery id, the same on every retry),
  `webhook-timestamp` (seconds, this attempt) and `webhook-signature` (`v1,<base64 HMAC of
  "id.timestamp.body">`, keyed with the secret's UTF-8 bytes), so a receiver can refuse
  replays (`standardwebhooks.Webhook(secret.encode()).verify(body, headers)`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook

from runtime.store.webhook_deliveries import DueDelivery

USER_AGENT = "Grey-Webhooks/1"
_TERMINAL = {"completed", "failed", "cancelled", "timeout"}


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def body(delivery: DueDelivery) -> str:
    """The delivery's body: the event, when it happened, and its task as it then was."""
    task: dict[str, Any] = {"task_id": delivery.task_id, "status": delivery.status}
    fields = delivery.task
    if fields is not None:
        task["type"] = fields["type"]
        task["labels"] = fields["labels"]
        if delivery.status == "completed":
            task["result"] = fields["result"]
        if delivery.status in _TERMINAL and fields["error"] is not None:
            task["error"] = fields["error"]
        times = ["created_at", "started_at"]
        times += ["completed_at", "cancelled_at"] if delivery.status in _TERMINAL else []
        task.update({name: _time(fields[name]) for name in times if fields[name] is not None})
    document = {"event": delivery.event, "timestamp": _time(delivery.occurred_at), "task": task}
    return json.dumps(document, separators=(",", ":"))


def grey_signature(secret: str, payload: str) -> str:
    """`sha256=<hex>`: the reference's X-Grey-Signature."""
    return "sha256=" + hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def headers(delivery_id: str, event: str, secret: str, payload: str, now: datetime) -> dict[str, str]:
    """Every header of one attempt (signed at `now`)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Grey-Event": event,
        "X-Grey-Signature": grey_signature(secret, payload),
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret.encode()).sign(delivery_id, now, payload),
    }
