"""Persisted state of stateful tasks and finished items of batch tasks.

Both are written inside the transaction that finishes the task or item, so a redelivered
message can neither apply a state twice nor count an item twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from runtime.store.coltypes import utc_now
from runtime.store.schema import batch_items, task_states
from runtime.store.upsert import dialect_insert


class StateRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, tenant_id: str, state_key: str) -> tuple[Any, int]:
        """(value, version) of a state key; (None, 0) before its first task."""
        stmt = select(task_states.c.value, task_states.c.version).where(
            task_states.c.tenant_id == tenant_id, task_states.c.state_key == state_key
        )
        with self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        return (None, 0) if row is None else (row.value, row.version)

    @staticmethod
    def save(
        conn: Connection, tenant_id: str, state_key: str, value: Any, version: int, task_id: str
    ) -> None:
        """Write version `version` (read + 1) inside the caller's transaction."""
        now = utc_now()
        if version == 1:
            stmt = dialect_insert(conn, task_states).values(
                tenant_id=tenant_id,
                state_key=state_key,
                value=value,
                version=1,
                updated_by=task_id,
                updated_at=now,
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[task_states.c.tenant_id, task_states.c.state_key],
                    set_={"value": value, "version": 1, "updated_by": task_id, "updated_at": now},
                )
            )
            return
        conn.execute(
            update(task_states)
            .where(task_states.c.tenant_id == tenant_id, task_states.c.state_key == state_key)
            .values(value=value, version=version, updated_by=task_id, updated_at=now)
        )


class BatchRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(
        self, task_id: str, index: int, status: str, result: Any = None, error: dict[str, Any] | None = None
    ) -> bool:
        """Store one finished item; False if it was already stored (a redelivered item)."""
        with self._engine.begin() as conn:
            stmt = dialect_insert(conn, batch_items).values(
                task_id=task_id, idx=index, status=status, result=result, error=error, finished_at=utc_now()
            )
            return conn.execute(stmt.on_conflict_do_nothing()).rowcount == 1

    def counts(self, task_id: str) -> tuple[int, int]:
        """(items finished, items failed) as committed now."""
        stmt = (
            select(batch_items.c.status, func.count())
            .where(batch_items.c.task_id == task_id)
            .group_by(batch_items.c.status)
        )
        with self._engine.connect() as conn:
            counts: dict[str, int] = {status: count for status, count in conn.execute(stmt).all()}
        return sum(counts.values()), counts.get("failed", 0)

    def finished_indexes(self, task_id: str) -> set[int]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(batch_items.c.idx).where(batch_items.c.task_id == task_id))
            return {idx for (idx,) in rows}

    def items(self, task_id: str) -> list[tuple[int, str, Any, dict[str, Any] | None]]:
        """(index, status, result, error) of every finished item, by index."""
        stmt = (
            select(batch_items.c.idx, batch_items.c.status, batch_items.c.result, batch_items.c.error)
            .where(batch_items.c.task_id == task_id)
            .order_by(batch_items.c.idx)
        )
        with self._engine.connect() as conn:
            return [tuple(row) for row in conn.execute(stmt)]
