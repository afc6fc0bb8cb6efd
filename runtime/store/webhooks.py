"""Webhook subscriptions of a tenant; `deliveries` holds what is owed to them (the outbox
and dead letters, runtime/store/webhook_deliveries.py)."""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from sqlalchemy import Engine, Row, delete, select

from runtime.store.coltypes import utc_now
from runtime.store.records import WebhookRecord
from runtime.store.schema import webhooks
from runtime.store.webhook_deliveries import WebhookDeliveries


def _record(row: Row[Any]) -> WebhookRecord:
    return WebhookRecord(**row._mapping)


class WebhookRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.deliveries = WebhookDeliveries(engine)

    def add(self, tenant_id: str, url: str, events: Iterable[str], secret: str) -> WebhookRecord:
        record = WebhookRecord(
            webhook_id=f"wh_{secrets.token_hex(6)}",
            tenant_id=tenant_id,
            url=url,
            events=list(events),
            secret=secret,
            created_at=utc_now(),
        )
        with self._engine.begin() as conn:
            conn.execute(webhooks.insert(), asdict(record))
        return record

    def get(self, tenant_id: str, webhook_id: str) -> WebhookRecord | None:
        stmt = select(webhooks).where(webhooks.c.tenant_id == tenant_id, webhooks.c.webhook_id == webhook_id)
        with self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _record(row)

    def list(self, tenant_id: str) -> list[WebhookRecord]:
        """The tenant's webhooks, oldest first."""
        stmt = (
            select(webhooks)
            .where(webhooks.c.tenant_id == tenant_id)
            .order_by(webhooks.c.created_at, webhooks.c.webhook_id)
        )
        with self._engine.connect() as conn:
            return [_record(row) for row in conn.execute(stmt)]

    def delete(self, tenant_id: str, webhook_id: str) -> bool:
        """False when absent or another tenant's (both answer 404). Its deliveries and dead
        letters go with it (foreign keys, ON DELETE CASCADE)."""
        stmt = delete(webhooks).where(webhooks.c.tenant_id == tenant_id, webhooks.c.webhook_id == webhook_id)
        with self._engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def for_event(self, tenant_id: str, event: str) -> builtins.list[WebhookRecord]:
        """Webhooks to notify of `event`: a tenant has few, so filter in Python (portable)."""
        return [hook for hook in self.list(tenant_id) if event in hook.events]
