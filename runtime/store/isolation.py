"""Tenant isolation, as the store enforces it: every task read is scoped to its tenant.

A tenant asking for another tenant's task by its id gets the answer an unknown id gets;
the refusal is counted here (per owning and asking tenant), which is what
`GET /v1/security/isolation` reports as `violations`. The check runs only on the
not-found path: one primary-key lookup.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, func, select

from runtime.store.schema import isolation_refusals, tasks
from runtime.store.upsert import dialect_insert


class IsolationRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def owner_of(self, task_id: str) -> str | None:
        """The tenant a task id belongs to, if it exists."""
        with self._engine.connect() as conn:
            owner: str | None = conn.execute(
                select(tasks.c.tenant_id).where(tasks.c.task_id == task_id)
            ).scalar_one_or_none()
            return owner

    def refused(self, tenant_id: str, requester_id: str, at: datetime) -> None:
        """`requester_id` was refused `tenant_id`'s task."""
        with self._engine.begin() as conn:
            stmt = dialect_insert(conn, isolation_refusals).values(
                tenant_id=tenant_id, requester_id=requester_id, count=1, last_at=at
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[isolation_refusals.c.tenant_id, isolation_refusals.c.requester_id],
                    set_={"count": isolation_refusals.c.count + 1, "last_at": at},
                )
            )

    def refusals(self, tenant_id: str) -> tuple[int, datetime | None]:
        """How many reads of the tenant's tasks by other tenants were refused, and the last when."""
        stmt = select(
            func.coalesce(func.sum(isolation_refusals.c.count), 0), func.max(isolation_refusals.c.last_at)
        )
        stmt = stmt.where(isolation_refusals.c.tenant_id == tenant_id)
        with self._engine.connect() as conn:
            count, last = conn.execute(stmt).one()
        return int(count), last
