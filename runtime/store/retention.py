"""Retention: finished tasks that ended before a time are deleted, a bounded batch at a time.

Each call deletes at most `rows` tasks in one short transaction; their events, labels,
batch items, proofs and logs go with them (ON DELETE CASCADE), and the result is a column
of the task. The runtime's schedule (runtime.execution.retention) calls it again after a
pause until nothing is left, so writers (submits, transitions) wait at most one batch.

Candidates are read through `tasks (status, created_at)` (every tenant) or `tasks
(tenant_id, status, created_at, task_id)` (one tenant), oldest first: a task ends after it
was created, so every task that ended before the cutoff was created before it, and the
range stops at the cutoff. `updated_at` (the time of its last transition: its ending) is
what decides. Unfinished tasks are never candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, delete, select

from runtime.store.records import TASK_STATUSES, UNFINISHED_STATUSES
from runtime.store.schema import tasks

FINISHED_STATUSES = tuple(status for status in TASK_STATUSES if status not in UNFINISHED_STATUSES)


@dataclass(frozen=True, slots=True)
class Expiry:
    """Finished tasks that ended before `before`: of `tenant_id`, or (None) of every tenant
    but those in `except_tenants` (which have their own rule)."""

    before: datetime
    tenant_id: str | None = None
    except_tenants: tuple[str, ...] = ()


class TaskRetention:
    """Deletes expired tasks; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def purge(self, expiry: Expiry, rows: int) -> int:
        """Deletes up to `rows` expired tasks (oldest first); how many. Fewer than `rows`:
        none are left."""
        found: list[str] = []
        with self._engine.connect() as conn:
            for ids in self.candidates(expiry, rows):
                found += [str(task_id) for task_id in conn.execute(ids).scalars()]
                if len(found) >= rows:
                    break
        found = found[:rows]
        if not found:
            return 0
        # Read apart, then deleted by key with the conditions checked again: the write
        # transaction holds its locks (SQLite: the database's one) only for the delete.
        stmt = delete(tasks).where(tasks.c.task_id.in_(found), *self._expired(expiry, FINISHED_STATUSES))
        with self._engine.begin() as conn:
            return conn.execute(stmt).rowcount

    def candidates(self, expiry: Expiry, rows: int) -> list[Select[Any]]:
        """The queries of up to `rows` expired task ids, one per finished status (each an
        equality on status: an index range oldest first)."""
        return [
            select(tasks.c.task_id)
            .where(*self._expired(expiry, (status,)))
            .order_by(tasks.c.created_at)
            .limit(rows)
            for status in FINISHED_STATUSES
        ]

    @staticmethod
    def _expired(expiry: Expiry, statuses: tuple[str, ...]) -> list[ColumnElement[bool]]:
        conditions = [
            tasks.c.status.in_(statuses),
            tasks.c.created_at < expiry.before,  # the index range: ended before => created before
            tasks.c.updated_at < expiry.before,  # what decides: when it ended
        ]
        if expiry.tenant_id is not None:
            conditions.append(tasks.c.tenant_id == expiry.tenant_id)
        elif expiry.except_tenants:
            conditions.append(tasks.c.tenant_id.not_in(expiry.except_tenants))
        return conditions
