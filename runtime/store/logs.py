"""Container task logs: the last bytes a task's latest attempt printed, one row per task.

Written by the worker when the container ends (any way it ends), read by the APIs'
log endpoints through `runtime.services.container_logs`. The result of the task keeps a
shorter tail (64 KiB); this keeps what the node's `GREY_CONTAINER_LOG_BYTES` allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from runtime.store.schema import task_logs, tasks
from runtime.store.upsert import dialect_insert


@dataclass(frozen=True, slots=True)
class TaskLogRecord:
    task_id: str
    attempt: int
    text: str
    total_bytes: int
    truncated: bool
    updated_at: datetime


class TaskLogRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def save(self, record: TaskLogRecord) -> None:
        """The log of an attempt; a later attempt's replaces an earlier one's, never the reverse."""
        row = {
            "task_id": record.task_id,
            "attempt": record.attempt,
            "text": record.text,
            "total_bytes": record.total_bytes,
            "truncated": record.truncated,
            "updated_at": record.updated_at,
        }
        with self._engine.begin() as conn:
            stmt = dialect_insert(conn, task_logs).values(row)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[task_logs.c.task_id],
                    set_={name: value for name, value in row.items() if name != "task_id"},
                    where=task_logs.c.attempt <= record.attempt,
                )
            )

    def get(self, tenant_id: str | None, task_id: str) -> TaskLogRecord | None:
        """The task's log, if it has one and is the tenant's (None: any tenant)."""
        stmt = select(task_logs).join(tasks, tasks.c.task_id == task_logs.c.task_id)
        stmt = stmt.where(task_logs.c.task_id == task_id)
        if tenant_id is not None:
            stmt = stmt.where(tasks.c.tenant_id == tenant_id)
        with self._engine.connect() as conn:
            row = conn.execute(stmt.with_only_columns(*task_logs.c)).first()
        return None if row is None else TaskLogRecord(**row._mapping)
