"""Task rows: submit, read, list, cancel, and the runtime's conditional transitions.

Every status change is a conditional UPDATE (`... WHERE status IN (...)`): Dramatiq
delivers at least once, and a redelivered message must never move a task backwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Row,
    exists,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError

from runtime.store.coltypes import utc_now
from runtime.store.cursor import decode_cursor, encode_cursor
from runtime.store.errors import DuplicateIdempotencyKey, TaskNotCancellable
from runtime.store.records import (
    CANCELLED,
    PENDING,
    RUNNING,
    TASK_STATUSES,
    UNFINISHED_STATUSES,
    NewTask,
    TaskPage,
    TaskRecord,
)
from runtime.store.schema import task_labels, tasks

# Columns the runtime may set in a transition. Identity, creation time (the list
# order), status (set by `to_status`) and labels (mirrored in task_labels) are not.
_FIXED_COLUMNS = {"task_id", "tenant_id", "created_at", "status", "labels"}
_TRANSITION_FIELDS = frozenset(tasks.c.keys()) - _FIXED_COLUMNS

_INSERT_TASK = tasks.insert()
_INSERT_LABELS = task_labels.insert()


if tuple(tasks.c.keys()) != tuple(field.name for field in dataclass_fields(TaskRecord)):
    raise RuntimeError("TaskRecord fields must list the tasks columns in table order")


def _record(row: Row[Any]) -> TaskRecord:
    # Positional: several times faster than by name, and the check above keeps it right.
    return TaskRecord(*row)


class TaskRepository:
    """Synchronous access to `tasks` and `task_labels`; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- submit ---------------------------------------------------------------

    def insert(self, new: NewTask) -> TaskRecord:
        """Store a pending task and its labels in one transaction.

        Raises DuplicateIdempotencyKey (with the first task's id) when the tenant has
        already used `new.idempotency_key`; the unique constraint decides, so two
        concurrent submits with the same key cannot both win.
        """
        row: dict[str, Any] = {
            "task_id": new.task_id,
            "tenant_id": new.tenant_id,
            "type": new.type,
            "status": PENDING,
            "priority": new.priority,
            "progress": 0,
            "payload": new.payload,
            "result": None,
            "error": None,
            "labels": dict(new.labels),
            "timeout_seconds": new.timeout_seconds,
            "idempotency_key": new.idempotency_key,
            "state_key": new.state_key,
            "dependencies": list(new.dependencies),
            "resources": dict(new.resources),
            "tee_required": new.tee_required,
            "tee_executed": False,
            "proof_available": False,
            "executed_on": None,
            "device_emulated": False,
            "retry_count": 0,
            "attempt": 0,
            "pool": new.pool,
            "created_at": new.created_at,
            "started_at": None,
            "completed_at": None,
            "cancelled_at": None,
            "duration_ms": None,
            "queue_time_ms": None,
            "execution_time_ms": None,
            "cancel_reason": None,
            "updated_at": new.created_at,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(_INSERT_TASK, row)
                if new.labels:
                    conn.execute(
                        _INSERT_LABELS,
                        [
                            {"task_id": new.task_id, "key": key, "value": value}
                            for key, value in new.labels.items()
                        ],
                    )
        except IntegrityError:
            if new.idempotency_key is None:
                raise
            existing = self._id_for_idempotency_key(new.tenant_id, new.idempotency_key)
            if existing is None:
                raise
            raise DuplicateIdempotencyKey(existing) from None
        return TaskRecord(**row)

    def _id_for_idempotency_key(self, tenant_id: str, key: str) -> str | None:
        stmt = select(tasks.c.task_id).where(
            tasks.c.tenant_id == tenant_id, tasks.c.idempotency_key == key
        )
        with self._engine.connect() as conn:
            return conn.execute(stmt).scalar_one_or_none()

    # -- read -----------------------------------------------------------------

    def get(self, tenant_id: str | None, task_id: str) -> TaskRecord | None:
        """The task, or None if absent or another tenant's (None tenant: any, for the runtime)."""
        stmt = select(tasks).where(tasks.c.task_id == task_id)
        if tenant_id is not None:
            stmt = stmt.where(tasks.c.tenant_id == tenant_id)
        with self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _record(row)

    def list(
        self,
        tenant_id: str,
        *,
        statuses: Iterable[str] | None = None,
        type: str | None = None,
        labels: Mapping[str, str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> TaskPage:
        """One page of the tenant's tasks, newest first (keyset on created_at, task_id).

        `statuses` empty or None means any; every label must match; `since` is
        inclusive, `until` exclusive. Raises InvalidCursor for a foreign cursor.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        filters = self._filters(tenant_id, statuses, type, labels or {}, since, until)
        page = select(tasks).where(*filters)
        if cursor is not None:
            created_at, task_id = decode_cursor(cursor)
            page = page.where(tuple_(tasks.c.created_at, tasks.c.task_id) < (created_at, task_id))
        page = page.order_by(tasks.c.created_at.desc(), tasks.c.task_id.desc()).limit(limit + 1)
        count = select(func.count()).select_from(tasks).where(*filters)
        with self._engine.connect() as conn:
            rows = conn.execute(page).all()
            total = conn.execute(count).scalar_one()
        has_more = len(rows) > limit
        records = [_record(row) for row in rows[:limit]]
        last = records[-1] if has_more else None
        return TaskPage(
            tasks=records,
            total=total,
            has_more=has_more,
            next_cursor=None if last is None else encode_cursor(last.created_at, last.task_id),
        )

    @staticmethod
    def _filters(
        tenant_id: str,
        statuses: Iterable[str] | None,
        type_: str | None,
        labels: Mapping[str, str],
        since: datetime | None,
        until: datetime | None,
    ) -> list[ColumnElement[bool]]:
        filters: list[ColumnElement[bool]] = [tasks.c.tenant_id == tenant_id]
        wanted = list(statuses or ())
        if wanted:
            filters.append(tasks.c.status.in_(wanted))
        if type_ is not None:
            filters.append(tasks.c.type == type_)
        for key, value in labels.items():
            # One EXISTS per label: portable, and served by task_labels' primary key.
            filters.append(
                exists().where(
                    task_labels.c.task_id == tasks.c.task_id,
                    task_labels.c.key == key,
                    task_labels.c.value == value,
                )
            )
        if since is not None:
            filters.append(tasks.c.created_at >= since)
        if until is not None:
            filters.append(tasks.c.created_at < until)
        return filters

    # -- cancel ---------------------------------------------------------------

    def cancel(
        self,
        tenant_id: str,
        task_id: str,
        reason: str | None = None,
        now: datetime | None = None,
    ) -> TaskRecord | None:
        """Cancel a pending or running task and return it.

        None when the task is absent or another tenant's; TaskNotCancellable(status)
        when it has already finished.
        """
        now = now or utc_now()
        stmt = (
            update(tasks)
            .where(
                tasks.c.task_id == task_id,
                tasks.c.tenant_id == tenant_id,
                tasks.c.status.in_(UNFINISHED_STATUSES),
            )
            .values(status=CANCELLED, cancelled_at=now, cancel_reason=reason, updated_at=now)
            .returning(*tasks.c)
        )
        with self._engine.begin() as conn:
            row = conn.execute(stmt).first()
            if row is not None:
                return _record(row)
            status = conn.execute(
                select(tasks.c.status).where(
                    tasks.c.task_id == task_id, tasks.c.tenant_id == tenant_id
                )
            ).scalar_one_or_none()
        if status is None:
            return None
        raise TaskNotCancellable(status)

    # -- runtime --------------------------------------------------------------

    def transition(
        self,
        task_id: str,
        *,
        from_statuses: tuple[str, ...],
        to_status: str,
        **fields: Any,
    ) -> bool:
        """Move the task to `to_status` only if it is in one of `from_statuses`.

        `fields` are other columns to set in the same UPDATE (values or SQL
        expressions such as `tasks.c.attempt + 1`). False means the task was absent
        or already elsewhere: a redelivered message must then do nothing.
        """
        unknown = fields.keys() - _TRANSITION_FIELDS
        if unknown:
            raise TypeError(f"transition cannot set {sorted(unknown)}")
        values = {"updated_at": utc_now(), **fields, "status": to_status}
        stmt = (
            update(tasks)
            .where(tasks.c.task_id == task_id, tasks.c.status.in_(from_statuses))
            .values(values)
        )
        with self._engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def update_progress(self, task_id: str, progress: int) -> bool:
        """Record progress (0-100) while the task runs; False once it has left `running`."""
        stmt = (
            update(tasks)
            .where(tasks.c.task_id == task_id, tasks.c.status == RUNNING)
            .values(progress=progress, updated_at=utc_now())
        )
        with self._engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def unfinished(self, limit: int | None = None) -> list[TaskRecord]:
        """Pending and running tasks, oldest first: what a restart must re-enqueue."""
        stmt = (
            select(tasks)
            .where(tasks.c.status.in_(UNFINISHED_STATUSES))
            .order_by(tasks.c.created_at, tasks.c.task_id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [_record(row) for row in conn.execute(stmt)]

    def running_on(self, node_id: str) -> list[TaskRecord]:
        """Tasks a node was running: what to re-queue when that node is marked down."""
        stmt = (
            select(tasks)
            .where(tasks.c.status == RUNNING, tasks.c.executed_on == node_id)
            .order_by(tasks.c.created_at, tasks.c.task_id)
        )
        with self._engine.connect() as conn:
            return [_record(row) for row in conn.execute(stmt)]

    # -- figures for health, usage and admission --------------------------------

    def count_by_status(
        self, tenant_id: str | None = None, statuses: Iterable[str] | None = None
    ) -> dict[str, int]:
        """Task counts per status (every known status present, zero if none).

        Pass `statuses` (e.g. pending, running) on hot paths: counting only those
        reads an index range instead of the whole task history.
        """
        wanted = tuple(statuses) if statuses else None
        stmt = select(tasks.c.status, func.count()).group_by(tasks.c.status)
        if tenant_id is not None:
            stmt = stmt.where(tasks.c.tenant_id == tenant_id)
        if wanted is not None:
            stmt = stmt.where(tasks.c.status.in_(wanted))
        with self._engine.connect() as conn:
            found = {status: count for status, count in conn.execute(stmt)}
        return {status: 0 for status in (wanted or TASK_STATUSES)} | found

    def oldest_pending_created_at(self) -> datetime | None:
        """Creation time of the longest-waiting pending task (queue age for health)."""
        stmt = select(func.min(tasks.c.created_at)).where(tasks.c.status == PENDING)
        with self._engine.connect() as conn:
            return conn.execute(stmt).scalar_one()

    def completed_since(self, since: datetime) -> int:
        """Tasks that finished (completed_at set) at or after `since`: throughput."""
        stmt = select(func.count()).select_from(tasks).where(tasks.c.completed_at >= since)
        with self._engine.connect() as conn:
            return conn.execute(stmt).scalar_one()
