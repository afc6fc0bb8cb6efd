"""Task rows as tenants see them: submit, read, list, cancel.

Every read takes a tenant (None: any, for the runtime) and answers only that tenant's
tasks. The runtime's own writes are in lifecycle.py, its scheduling reads in
scheduling.py, the counts for health and usage in figures.py.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from runtime.store.admission import DepthGate
from runtime.store.coltypes import utc_now
from runtime.store.cursor import decode_cursor, encode_cursor
from runtime.store.direct import DirectTransaction
from runtime.store.errors import DuplicateIdempotencyKey, QueueFull, TaskNotCancellable
from runtime.store.group_commit import GroupCommit
from runtime.store.records import (
    CANCELLED,
    PENDING,
    TOTAL_CAP,
    UNFINISHED_STATUSES,
    NewTask,
    TaskEvent,
    TaskPage,
    TaskRecord,
)
from runtime.store.schema import task_events, task_labels, tasks
from runtime.store.task_listing import TaskFilter, capped_count_query, page_query
from runtime.store.task_rows import INSERT_EVENT, Listeners, as_record, event_row

_INSERT_TASK = tasks.insert()
_INSERT_LABELS = task_labels.insert()
_GET_ANY = select(tasks).where(tasks.c.task_id == bindparam("w_task_id"))
_GET_OWN = _GET_ANY.where(tasks.c.tenant_id == bindparam("w_tenant_id"))
_COLUMNS = len(tasks.c)


class TaskRepository:
    """Synchronous access to `tasks` and `task_labels` for tenants; safe to share between threads.

    A cancel also appends its event in the same transaction and then tells the listeners.
    """

    def __init__(self, engine: Engine, writes: GroupCommit, listeners: Listeners) -> None:
        self._engine = engine
        self._writes = writes  # the hot writes' group commit: submits share it with claims
        self._listeners = listeners

    # -- submit ---------------------------------------------------------------

    def insert(self, new: NewTask) -> TaskRecord:
        """Store a pending task and its labels in one transaction.

        Raises DuplicateIdempotencyKey (with the first task's id) when the tenant has
        already used `new.idempotency_key`; the unique constraint decides, so two
        concurrent submits with the same key cannot both win.
        """
        [outcome] = self.insert_many([new])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def insert_many(self, news: Sequence[NewTask]) -> list[TaskRecord | Exception]:
        """`insert` for several tasks at once (one transaction when none fails): for each,
        its record or the exception `insert` would have raised.

        QueueFull for a task whose tenant already has its `max_queue_depth` of unfinished
        tasks, counted in the transaction that inserts (runtime.store.admission), so
        concurrent submits, of this gateway or of others, never exceed it."""
        jobs: list[Callable[[DirectTransaction], Any]] = []
        records = []
        postgres = self._engine.dialect.name == "postgresql"
        gates: dict[str, DepthGate] = {}
        for new in news:
            gate = gates.setdefault(new.tenant_id, DepthGate(new.tenant_id, postgres))
            job, record = self._insert_job(new, gate)
            jobs.append(job)
            records.append(record)
        if postgres and len(gates) > 1:  # every tenant's lock first, in one order: no deadlock
            jobs.insert(0, DepthGate.lock_all(sorted(gates)))
        results = self._writes.run_many(jobs)[len(jobs) - len(news) :]
        outcomes: list[TaskRecord | Exception] = []
        for new, record, outcome in zip(news, records, results, strict=True):
            if isinstance(outcome, IntegrityError) and new.idempotency_key is not None:
                existing = self._id_for_idempotency_key(new.tenant_id, new.idempotency_key)
                if existing is not None:
                    outcome = DuplicateIdempotencyKey(existing)
            outcomes.append(outcome if isinstance(outcome, Exception) else record)
        return outcomes

    @staticmethod
    def _insert_job(
        new: NewTask, gate: DepthGate | None = None
    ) -> tuple[Callable[[DirectTransaction], QueueFull | None], TaskRecord]:
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
            "event_seq": 0,
            "sent_at": new.created_at,  # the intake sends it right after the insert
            "lease_expires_at": None,
            "api": new.api,
        }
        owner = {"task_id": new.task_id, "tenant_id": new.tenant_id, "created_at": new.created_at}
        labels = [{**owner, "key": key, "value": value} for key, value in new.labels.items()]

        def write(tx: DirectTransaction) -> QueueFull | None:
            refused = None if gate is None else gate.admit(tx)
            if refused is not None:
                return refused  # returned, not raised: the batch's other submits go on
            tx.execute(_INSERT_TASK, row)
            for label in labels:
                tx.execute(_INSERT_LABELS, label)
            return None

        return write, TaskRecord(**row)

    def _id_for_idempotency_key(self, tenant_id: str, key: str) -> str | None:
        stmt = select(tasks.c.task_id).where(tasks.c.tenant_id == tenant_id, tasks.c.idempotency_key == key)
        with self._engine.connect() as conn:
            return conn.execute(stmt).scalar_one_or_none()

    # -- read -----------------------------------------------------------------

    def get(self, tenant_id: str | None, task_id: str) -> TaskRecord | None:
        """The task, or None if absent or another tenant's (None tenant: any, for the runtime)."""
        with self._engine.connect() as conn:
            if tenant_id is None:
                row = conn.execute(_GET_ANY, {"w_task_id": task_id}).first()
            else:
                row = conn.execute(_GET_OWN, {"w_task_id": task_id, "w_tenant_id": tenant_id}).first()
        return None if row is None else as_record(row)

    def find(self, tenant_id: str, name: str) -> TaskRecord | None:
        """The tenant's task whose id is `name`, else the one the tenant submitted under the
        idempotency key `name` (the Orchestrator's client-chosen `task_id`): every API finds
        a task by either. An id wins over a key; ids are made by the server."""
        task = self.get(tenant_id, name)
        if task is not None:
            return task
        stmt = select(tasks).where(tasks.c.tenant_id == tenant_id, tasks.c.idempotency_key == name)
        with self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else as_record(row)

    def list(
        self,
        tenant_id: str,
        *,
        statuses: Iterable[str] | None = None,
        type: str | None = None,
        labels: Mapping[str, str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        priority: str | None = None,
        pool: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        offset: int = 0,
    ) -> TaskPage:
        """One page of the tenant's tasks, newest first (keyset on created_at, task_id).

        `statuses` empty or None means any; every label must match; `since` is
        inclusive, `until` exclusive; `priority` and `pool` (the dashboard's filters) must
        equal. Raises InvalidCursor for a foreign cursor. `offset`
        skips that many matches first (CloudAI's paging; a cursor is cheaper for deep pages).
        `total` counts matches up to TOTAL_CAP (`total_exact` false past it), and costs
        nothing on a first page that holds every match. Each read is one ordered index
        range (runtime.store.task_listing), so a page costs the same at any depth of history.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        wanted = TaskFilter.of(
            tenant_id,
            list(statuses or ()),
            type,
            dict(labels or {}),
            since,
            until,
            priority=priority,
            pool=pool,
        )
        after = None if cursor is None else decode_cursor(cursor)
        page = page_query(wanted, after, offset + limit + 1)
        if offset:
            page = page.offset(offset)
        with self._engine.connect() as conn:
            rows = conn.execute(page).all()
            has_more = len(rows) > limit
            if after is None and not offset and not has_more:
                total = len(rows)  # this page holds every match
            else:
                total = conn.execute(capped_count_query(wanted, TOTAL_CAP + 1)).scalar_one()
        records = [as_record(row[:_COLUMNS]) for row in rows[:limit]]  # less the keyset's copy
        last = records[-1] if has_more else None
        return TaskPage(
            tasks=records,
            total=min(total, TOTAL_CAP),
            has_more=has_more,
            next_cursor=None if last is None else encode_cursor(last.created_at, last.task_id),
            total_exact=total <= TOTAL_CAP,
        )

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
            .values(
                status=CANCELLED,
                cancelled_at=now,
                cancel_reason=reason,
                updated_at=now,
                event_seq=tasks.c.event_seq + 1,
            )
            .returning(*tasks.c)
        )
        with self._engine.begin() as conn:
            row = conn.execute(stmt).first()
            if row is not None:
                record = as_record(row)
                message = f"cancelled: {reason}" if reason else "cancelled"
                event = event_row(task_id, record.event_seq, CANCELLED, record.progress, message, now)
                conn.execute(INSERT_EVENT, event)
        if row is not None:
            self._listeners.committed(task_id)
            return record
        with self._engine.connect() as conn:
            status = conn.execute(
                select(tasks.c.status).where(tasks.c.task_id == task_id, tasks.c.tenant_id == tenant_id)
            ).scalar_one_or_none()
        if status is None:
            return None
        raise TaskNotCancellable(status)

    # -- by id: dependency checks and event streams ---------------------------

    def statuses(self, tenant_id: str | None, task_ids: Iterable[str]) -> dict[str, str]:
        """Status of each of these tasks that exists (and is the tenant's, unless None)."""
        wanted = list(dict.fromkeys(task_ids))
        if not wanted:
            return {}
        stmt = select(tasks.c.task_id, tasks.c.status).where(tasks.c.task_id.in_(wanted))
        if tenant_id is not None:
            stmt = stmt.where(tasks.c.tenant_id == tenant_id)
        with self._engine.connect() as conn:
            return {task_id: status for task_id, status in conn.execute(stmt)}

    def events_after(self, task_id: str, seq: int) -> builtins.list[TaskEvent]:
        """The task's events with a sequence number above `seq`, in order."""
        stmt = (
            select(task_events)
            .where(task_events.c.task_id == task_id, task_events.c.seq > seq)
            .order_by(task_events.c.seq)
        )
        with self._engine.connect() as conn:
            return [TaskEvent(*row) for row in conn.execute(stmt)]
