"""What the runtime asks of task rows to decide what runs next and what to send again.

Read-only: the order of a state key's tasks, the unfinished tasks a restart or a lost
node must re-enqueue, and what the reconciler looks for (running attempts whose lease
expired, pending tasks whose message may be gone).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Engine, and_, func, or_, select

from runtime.store.records import CONTAINER_TASK, PENDING, RUNNING, UNFINISHED_STATUSES, TaskRecord
from runtime.store.schema import tasks
from runtime.store.task_rows import as_record


def _containers(wanted: bool) -> ColumnElement[bool]:
    """Container tasks (`wanted`) or every other type."""
    return tasks.c.type == CONTAINER_TASK if wanted else tasks.c.type != CONTAINER_TASK


class SchedulingQueries:
    """Reads for the executor, the reaper and restart recovery; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def earlier_unfinished(self, task: TaskRecord) -> str | None:
        """An unfinished task submitted before `task` with its state key, if any (the one to wait for)."""
        stmt = (
            select(tasks.c.task_id)
            .where(
                tasks.c.tenant_id == task.tenant_id,
                tasks.c.state_key == task.state_key,
                tasks.c.status.in_(UNFINISHED_STATUSES),
                or_(
                    tasks.c.created_at < task.created_at,
                    and_(tasks.c.created_at == task.created_at, tasks.c.task_id < task.task_id),
                ),
            )
            .order_by(tasks.c.created_at, tasks.c.task_id)
            .limit(1)
        )
        with self._engine.connect() as conn:
            return conn.execute(stmt).scalar_one_or_none()

    def next_unfinished(self, tenant_id: str, state_key: str) -> str | None:
        """The oldest unfinished task of a state key: the one allowed to run next."""
        stmt = (
            select(tasks.c.task_id)
            .where(
                tasks.c.tenant_id == tenant_id,
                tasks.c.state_key == state_key,
                tasks.c.status.in_(UNFINISHED_STATUSES),
            )
            .order_by(tasks.c.created_at, tasks.c.task_id)
            .limit(1)
        )
        with self._engine.connect() as conn:
            return conn.execute(stmt).scalar_one_or_none()

    def unfinished(
        self,
        limit: int | None = None,
        statuses: tuple[str, ...] = UNFINISHED_STATUSES,
        pool: str | None = None,
    ) -> list[TaskRecord]:
        """Pending and running tasks, oldest first: what a restart must re-enqueue."""
        stmt = (
            select(tasks)
            .where(tasks.c.status.in_(statuses), *([tasks.c.pool == pool] if pool else []))
            .order_by(tasks.c.created_at, tasks.c.task_id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [as_record(row) for row in conn.execute(stmt)]

    def running_on(self, node_id: str) -> list[TaskRecord]:
        """Tasks a node was running: what to re-queue when that node is marked down."""
        stmt = (
            select(tasks)
            .where(tasks.c.status == RUNNING, tasks.c.executed_on == node_id)
            .order_by(tasks.c.created_at, tasks.c.task_id)
        )
        with self._engine.connect() as conn:
            return [as_record(row) for row in conn.execute(stmt)]

    def expired_leases(self, now: datetime, limit: int = 500) -> list[TaskRecord]:
        """Running tasks whose attempt's lease ended before `now` (or that have none),
        longest expired first: their worker stopped renewing, whatever its node's state."""
        lease = tasks.c.lease_expires_at
        stmt = (
            select(tasks)
            .where(tasks.c.status == RUNNING, or_(lease < now, lease.is_(None)))
            .order_by(lease, tasks.c.task_id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [as_record(row) for row in conn.execute(stmt)]

    def stale_pending_counts(
        self, sent_before: datetime, containers: bool = False
    ) -> dict[tuple[str, str], int]:
        """Per (pool, priority): pending tasks whose message was last sent before
        `sent_before` (a message due later, e.g. a delayed retry, is not stale yet).
        `containers`: container tasks only (they have queues of their own), else the others."""
        stmt = (
            select(tasks.c.pool, tasks.c.priority, func.count())
            .where(
                tasks.c.status == PENDING,
                or_(tasks.c.sent_at < sent_before, tasks.c.sent_at.is_(None)),
                _containers(containers),
            )
            .group_by(tasks.c.pool, tasks.c.priority)
        )
        with self._engine.connect() as conn:
            return {(pool, priority): int(count) for pool, priority, count in conn.execute(stmt)}

    def stale_pending(
        self, pool: str, priority: str, sent_before: datetime, limit: int, containers: bool = False
    ) -> list[TaskRecord]:
        """The `limit` pending tasks of one queue sent longest ago (before `sent_before`)."""
        stmt = (
            select(tasks)
            .where(
                tasks.c.status == PENDING,
                _containers(containers),
                tasks.c.pool == pool,
                tasks.c.priority == priority,
                or_(tasks.c.sent_at < sent_before, tasks.c.sent_at.is_(None)),
            )
            .order_by(tasks.c.sent_at, tasks.c.created_at, tasks.c.task_id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [as_record(row) for row in conn.execute(stmt)]
