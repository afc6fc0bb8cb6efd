"""Webhook deliveries: the outbox the status trigger fills, and the dead letters.

A delivery row is written by the trigger on `tasks` (runtime/store/schema.py) in the
transaction of the transition it reports, one per subscribed webhook. The coordinator's
deliverer (runtime/execution/webhooks) claims due rows (`next_attempt_at` moved to the
end of the claim, so a deliverer that dies mid-attempt leaves them due again), sends them
and settles each: delivered rows are deleted, failed ones are due again later, and those
out of attempts (or whose endpoint answered 410 Gone) become dead letters until a tenant
redelivers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, insert, literal, select, tuple_, update

from runtime.store.schema import tasks, webhook_dead_letters, webhook_deliveries, webhook_disabled, webhooks

#: What a delivery's body shows of its task (fixed once a task has finished).
TASK_FIELDS = (
    "type",
    "labels",
    "result",
    "error",
    "created_at",
    "started_at",
    "completed_at",
    "cancelled_at",
)

_MOVED = (
    "delivery_id",
    "webhook_id",
    "tenant_id",
    "task_id",
    "event",
    "status",
    "occurred_at",
    "attempts",
    "body",
    "last_status_code",
    "last_error",
)


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A claimed delivery with what sending it needs: its endpoint and its task's fields
    (None: the task is gone)."""

    delivery_id: str
    webhook_id: str
    tenant_id: str
    task_id: str
    event: str
    status: str
    occurred_at: datetime
    attempts: int
    body: str | None
    url: str
    secret: str
    task: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Settlement:
    """How one attempt ended: `retry_at` None and not delivered means a dead letter;
    `disable` (410 Gone) also disables the webhook and dead-letters its other deliveries."""

    delivery_id: str
    webhook_id: str
    body: str
    delivered: bool
    status_code: int | None = None
    error: str | None = None
    retry_at: datetime | None = None
    disable: bool = False


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A delivery as the API lists it: pending (`next_attempt_at`) or dead (`dead_at`)."""

    delivery_id: str
    webhook_id: str
    tenant_id: str
    task_id: str
    event: str
    status: str
    occurred_at: datetime
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None = None
    dead_at: datetime | None = None


class WebhookDeliveries:
    """The outbox and the dead letters; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- the deliverer ----------------------------------------------------------------------

    def claim_due(self, now: datetime, limit: int, until: datetime) -> list[DueDelivery]:
        """Up to `limit` deliveries due at `now`, claimed until `until` (oldest due first).
        Nothing due: one indexed read, no write."""
        d = webhook_deliveries
        due = select(d.c.delivery_id).where(d.c.next_attempt_at <= now).order_by(d.c.next_attempt_at)
        with self._engine.connect() as conn:
            ids = list(conn.execute(due.limit(limit)).scalars())
        if not ids:
            return []
        claim = (
            update(d)
            .where(d.c.delivery_id.in_(ids), d.c.next_attempt_at <= now)  # not claimed meanwhile
            .values(next_attempt_at=until)
            .returning(d.c.delivery_id)
        )
        fields = [tasks.c[name] for name in TASK_FIELDS]
        read = (
            select(d, webhooks.c.url, webhooks.c.secret, tasks.c.task_id.label("task_found"), *fields)
            .join(webhooks, webhooks.c.webhook_id == d.c.webhook_id)
            .outerjoin(tasks, tasks.c.task_id == d.c.task_id)
        )
        with self._engine.begin() as conn:
            claimed = list(conn.execute(claim).scalars())
            rows = conn.execute(read.where(d.c.delivery_id.in_(claimed))).all() if claimed else []
        due_first = {delivery_id: n for n, delivery_id in enumerate(ids)}
        return sorted((_due(row._mapping) for row in rows), key=lambda due: due_first[due.delivery_id])

    def settle(self, settlements: Sequence[Settlement], now: datetime) -> None:
        """Records how these attempts ended, in one transaction."""
        if not settlements:
            return
        d = webhook_deliveries
        with self._engine.begin() as conn:
            delivered = [s.delivery_id for s in settlements if s.delivered]
            if delivered:
                conn.execute(delete(d).where(d.c.delivery_id.in_(delivered)))
            for s in settlements:
                if s.delivered:
                    continue
                failed = {"body": s.body, "last_status_code": s.status_code, "last_error": s.error}
                if s.retry_at is not None and not s.disable:
                    retry = update(d).where(d.c.delivery_id == s.delivery_id)
                    conn.execute(
                        retry.values({**failed, "attempts": d.c.attempts + 1, "next_attempt_at": s.retry_at})
                    )
                    continue
                last = update(d).where(d.c.delivery_id == s.delivery_id)
                conn.execute(last.values({**failed, "attempts": d.c.attempts + 1}))
                _bury(conn, d.c.delivery_id == s.delivery_id, now)
                if s.disable:
                    _disable(conn, s.webhook_id, now, s.error or "410 Gone")

    # -- the API ----------------------------------------------------------------------------

    def pending(self, tenant_id: str, webhook_id: str) -> list[DeliveryRecord]:
        """The webhook's deliveries not yet delivered, soonest due first."""
        d = webhook_deliveries
        stmt = (
            select(*[d.c[name] for name in _MOVED if name != "body"], d.c.next_attempt_at)
            .where(d.c.tenant_id == tenant_id, d.c.webhook_id == webhook_id)
            .order_by(d.c.next_attempt_at, d.c.delivery_id)
        )
        with self._engine.connect() as conn:
            return [DeliveryRecord(**row._mapping) for row in conn.execute(stmt)]

    def dead_letters(
        self, tenant_id: str, webhook_id: str, limit: int, before: tuple[datetime, str] | None = None
    ) -> tuple[list[DeliveryRecord], bool]:
        """The webhook's dead letters, newest first, after the keyset position `before`;
        and whether more follow."""
        dl = webhook_dead_letters
        stmt = select(*[dl.c[name] for name in _MOVED if name != "body"], dl.c.dead_at).where(
            dl.c.tenant_id == tenant_id, dl.c.webhook_id == webhook_id
        )
        if before is not None:
            stmt = stmt.where(tuple_(dl.c.dead_at, dl.c.delivery_id) < tuple_(*before))
        stmt = stmt.order_by(dl.c.dead_at.desc(), dl.c.delivery_id.desc()).limit(limit + 1)
        with self._engine.connect() as conn:
            records = [DeliveryRecord(**row._mapping) for row in conn.execute(stmt)]
        return records[:limit], len(records) > limit

    def redeliver(
        self, tenant_id: str, webhook_id: str, delivery_id: str, now: datetime
    ) -> DeliveryRecord | None:
        """A dead letter back in the outbox, due now with its attempts reset (same id and
        body: a receiver that saw it can tell); its webhook enabled again.
        None when the tenant's webhook has no such dead letter."""
        dl, d = webhook_dead_letters, webhook_deliveries
        match = and_(
            dl.c.tenant_id == tenant_id, dl.c.webhook_id == webhook_id, dl.c.delivery_id == delivery_id
        )
        columns = [dl.c[name] for name in _MOVED if name != "attempts"]
        back = insert(d).from_select(
            [*[name for name in _MOVED if name != "attempts"], "attempts", "next_attempt_at"],
            select(*columns, literal(0), literal(now, d.c.next_attempt_at.type)).where(match),
        )
        with self._engine.begin() as conn:
            if conn.execute(select(dl.c.delivery_id).where(match)).first() is None:
                return None
            conn.execute(back)
            conn.execute(delete(dl).where(match))
            conn.execute(delete(webhook_disabled).where(webhook_disabled.c.webhook_id == webhook_id))
            row = conn.execute(
                select(*[d.c[name] for name in _MOVED if name != "body"], d.c.next_attempt_at).where(
                    d.c.delivery_id == delivery_id
                )
            ).one()
        return DeliveryRecord(**row._mapping)

    def disabled(self, tenant_id: str) -> dict[str, tuple[datetime, str]]:
        """The tenant's webhooks disabled by a 410: webhook id -> (when, why)."""
        stmt = (
            select(webhook_disabled)
            .join(webhooks, webhooks.c.webhook_id == webhook_disabled.c.webhook_id)
            .where(webhooks.c.tenant_id == tenant_id)
        )
        with self._engine.connect() as conn:
            return {row.webhook_id: (row.disabled_at, row.reason) for row in conn.execute(stmt)}


def _due(row: Any) -> DueDelivery:
    task = {name: row[name] for name in TASK_FIELDS} if row["task_found"] is not None else None
    return DueDelivery(
        delivery_id=row["delivery_id"],
        webhook_id=row["webhook_id"],
        tenant_id=row["tenant_id"],
        task_id=row["task_id"],
        event=row["event"],
        status=row["status"],
        occurred_at=row["occurred_at"],
        attempts=row["attempts"],
        body=row["body"],
        url=row["url"],
        secret=row["secret"],
        task=task,
    )


def _bury(conn: Connection, which: Any, now: datetime) -> None:
    """Moves the outbox rows matching `which` to the dead letters."""
    d, dl = webhook_deliveries, webhook_dead_letters
    source = select(*[d.c[name] for name in _MOVED], literal(now, dl.c.dead_at.type)).where(which)
    conn.execute(insert(dl).from_select([*_MOVED, "dead_at"], source))
    conn.execute(delete(d).where(which))


def _disable(conn: Connection, webhook_id: str, now: datetime, reason: str) -> None:
    """No new deliveries for the webhook; those waiting become dead letters."""
    exists = select(webhook_disabled.c.webhook_id).where(webhook_disabled.c.webhook_id == webhook_id)
    if conn.execute(exists).first() is None:
        conn.execute(insert(webhook_disabled).values(webhook_id=webhook_id, disabled_at=now, reason=reason))
    _bury(conn, webhook_deliveries.c.webhook_id == webhook_id, now)
