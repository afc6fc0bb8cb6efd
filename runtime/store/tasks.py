"""Task rows: submit, read, list, cancel, and the runtime's conditional transitions.

Every status change is a conditional UPDATE (`... WHERE status IN (...)`): Dramatiq
delivers at least once, and a redelivered message must never move a task backwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ClauseElement,
    ColumnElement,
    Connection,
    Engine,
    Row,
    Update,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError

from runtime.store.coltypes import utc_now
from runtime.store.cursor import decode_cursor, encode_cursor
from runtime.store.direct import DirectStatements, DirectTransaction
from runtime.store.errors import DuplicateIdempotencyKey, TaskNotCancellable
from runtime.store.group_commit import GroupCommit
from runtime.store.records import (
    CANCELLED,
    PENDING,
    RUNNING,
    TASK_STATUSES,
    UNFINISHED_STATUSES,
    NewTask,
    TaskEvent,
    TaskPage,
    TaskRecord,
)
from runtime.store.schema import task_events, task_labels, tasks

# Columns the runtime may set in a transition. Identity, creation time (the list
# order), status (set by `to_status`) and labels (mirrored in task_labels) are not.
_FIXED_COLUMNS = {"task_id", "tenant_id", "created_at", "status", "labels", "event_seq"}
_TRANSITION_FIELDS = frozenset(tasks.c.keys()) - _FIXED_COLUMNS

_INSERT_TASK = tasks.insert()
_INSERT_LABELS = task_labels.insert()
_INSERT_EVENT = task_events.insert()
_GET_ANY = select(tasks).where(tasks.c.task_id == bindparam("w_task_id"))
_GET_OWN = _GET_ANY.where(tasks.c.tenant_id == bindparam("w_tenant_id"))

# Transitions come in a few shapes (claim, complete, fail, retry...): each shape's UPDATE is
# built once with bind parameters. Building a Core statement for this wide table costs more
# than running it on SQLite.
_TRANSITIONS: dict[tuple[Any, ...], Update] = {}


def _transition_statement(
    from_statuses: tuple[str, ...], names: tuple[str, ...], matched: tuple[str, ...]
) -> Update:
    key = (from_statuses, names, matched)
    stmt = _TRANSITIONS.get(key)
    if stmt is None:
        values: dict[str, Any] = {name: bindparam(f"v_{name}", type_=tasks.c[name].type) for name in names}
        values["event_seq"] = tasks.c.event_seq + 1
        # One bind per status (not an expanding IN): compiled once, run directly.
        statuses = [bindparam(None, status, type_=tasks.c.status.type) for status in from_statuses]
        conditions = [tasks.c.task_id == bindparam("w_task_id"), tasks.c.status.in_(statuses)]
        conditions += [tasks.c[name] == bindparam(f"w_{name}", type_=tasks.c[name].type) for name in matched]
        stmt = update(tasks).where(*conditions).values(values).returning(tasks.c.event_seq, tasks.c.progress)
        _TRANSITIONS[key] = stmt
    return stmt


# The claim of a task that needs no pre-checks (see TaskRepository.claim): read and
# pending -> running in one statement.
_CLAIM = (
    update(tasks)
    .where(tasks.c.task_id == bindparam("w_task_id"), tasks.c.status == PENDING)
    .values(
        status=RUNNING,
        updated_at=bindparam("v_now", type_=tasks.c.updated_at.type),
        attempt=tasks.c.attempt + 1,
        # The first start and first queue time stay (a retried task is claimed again).
        started_at=func.coalesce(
            tasks.c.started_at, bindparam("v_started_at", type_=tasks.c.started_at.type)
        ),
        queue_time_ms=func.coalesce(tasks.c.queue_time_ms, bindparam("v_queue_time_ms")),
        executed_on=bindparam("v_executed_on"),
        progress=0,
        device_emulated=bindparam("v_device_emulated", type_=tasks.c.device_emulated.type),
        event_seq=tasks.c.event_seq + 1,
    )
    .returning(*tasks.c)
)


if tuple(tasks.c.keys()) != tuple(field.name for field in dataclass_fields(TaskRecord)):
    raise RuntimeError("TaskRecord fields must list the tasks columns in table order")


def _record(row: Row[Any]) -> TaskRecord:
    # Positional: several times faster than by name, and the check above keeps it right.
    return TaskRecord(*row)


_PROGRESS: dict[tuple[Any, ...], Update] = {}


def _progress_statement(matched: tuple[str, ...], forward_only: bool) -> Update:
    key = (matched, forward_only)
    stmt = _PROGRESS.get(key)
    if stmt is None:
        conditions = [tasks.c.task_id == bindparam("w_task_id"), tasks.c.status == RUNNING]
        conditions += [tasks.c[name] == bindparam(f"w_{name}", type_=tasks.c[name].type) for name in matched]
        if forward_only:
            conditions.append(tasks.c.progress < bindparam("v_progress"))
        stmt = (
            update(tasks)
            .where(*conditions)
            .values(
                progress=bindparam("v_progress"),
                updated_at=bindparam("v_updated_at", type_=tasks.c.updated_at.type),
                event_seq=tasks.c.event_seq + 1,
            )
            .returning(tasks.c.event_seq)
        )
        _PROGRESS[key] = stmt
    return stmt


class ChangeListener:
    """Told about every task event once it is committed (visible to every reader)."""

    def after_commit(self, task_id: str) -> None:
        """Runs after the commit, in the writer's thread: must not block."""


def _event(
    task_id: str, seq: int, status: str, progress: int, message: str | None, at: datetime
) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "seq": seq,
        "status": status,
        "progress": progress,
        "message": message,
        "at": at,
    }


class TaskRepository:
    """Synchronous access to `tasks` and `task_labels`; safe to share between threads.

    Every status change and progress report also appends a row to `task_events` in the
    same transaction (streams replay them in order) and then tells the listeners.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # Submit, claim, transitions and progress: the hot writes, group-committed.
        self._writes = GroupCommit(DirectStatements(engine))
        self.listeners: list[ChangeListener] = []

    def close(self) -> None:
        """Return the write connection to the pool (before the engine is disposed)."""
        self._writes.close()

    def _committed(self, task_id: str) -> None:
        for listener in self.listeners:
            listener.after_commit(task_id)

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
        its record or the exception `insert` would have raised."""
        jobs, records = [], []
        for new in news:
            job, record = self._insert_job(new)
            jobs.append(job)
            records.append(record)
        outcomes: list[TaskRecord | Exception] = []
        for new, record, outcome in zip(news, records, self._writes.run_many(jobs), strict=True):
            if isinstance(outcome, IntegrityError) and new.idempotency_key is not None:
                existing = self._id_for_idempotency_key(new.tenant_id, new.idempotency_key)
                if existing is not None:
                    outcome = DuplicateIdempotencyKey(existing)
            outcomes.append(outcome if isinstance(outcome, Exception) else record)
        return outcomes

    @staticmethod
    def _insert_job(new: NewTask) -> tuple[Callable[[DirectTransaction], None], TaskRecord]:
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
        }
        labels = [{"task_id": new.task_id, "key": key, "value": value} for key, value in new.labels.items()]

        def write(tx: DirectTransaction) -> None:
            tx.execute(_INSERT_TASK, row)
            for label in labels:
                tx.execute(_INSERT_LABELS, label)

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
                record = _record(row)
                message = f"cancelled: {reason}" if reason else "cancelled"
                conn.execute(
                    _INSERT_EVENT, _event(task_id, record.event_seq, CANCELLED, record.progress, message, now)
                )
        if row is not None:
            self._committed(task_id)
            return record
        with self._engine.connect() as conn:
            status = conn.execute(
                select(tasks.c.status).where(tasks.c.task_id == task_id, tasks.c.tenant_id == tenant_id)
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
        match: Mapping[str, Any] | None = None,
        message: str | None = None,
        also: Callable[[Connection], None] | None = None,
        **fields: Any,
    ) -> bool:
        """Move the task to `to_status` only if it is in one of `from_statuses`.

        `fields` are other columns to set in the same UPDATE (values or SQL
        expressions such as `tasks.c.attempt + 1`). `match` adds equality conditions
        (e.g. the attempt a worker claimed, so a node given up on cannot finish a task
        that was re-queued). `also` runs in the same transaction when the update
        matched (e.g. saving a stateful task's state). False means the task was absent
        or already elsewhere: a redelivered message must then do nothing.
        """
        unknown = fields.keys() - _TRANSITION_FIELDS
        if unknown:
            raise TypeError(f"transition cannot set {sorted(unknown)}")
        now = utc_now()
        values = {"updated_at": now, **fields, "status": to_status}
        match = match or {}
        if also is not None or any(isinstance(v, ClauseElement) for v in (*values.values(), *match.values())):
            return self._transition_with(task_id, from_statuses, to_status, values, match, message, also, now)
        names, matched = tuple(sorted(values)), tuple(sorted(match))
        stmt = _transition_statement(tuple(from_statuses), names, matched)
        params = {f"v_{name}": values[name] for name in names}
        params |= {f"w_{name}": match[name] for name in matched}
        params["w_task_id"] = task_id

        def write(tx: DirectTransaction) -> bool:
            row = tx.returning(stmt, params)
            if row is None:
                return False
            seq, progress = row
            tx.execute(_INSERT_EVENT, _event(task_id, seq, to_status, progress, message, now))
            return True

        if not self._writes.run(write):
            return False
        self._committed(task_id)
        return True

    def _transition_with(
        self,
        task_id: str,
        from_statuses: tuple[str, ...],
        to_status: str,
        values: dict[str, Any],
        match: Mapping[str, Any],
        message: str | None,
        also: Callable[[Connection], None] | None,
        now: datetime,
    ) -> bool:
        """`transition` with SQL expressions or an `also` step: through `Connection.execute`."""
        conditions = [tasks.c.task_id == task_id, tasks.c.status.in_(from_statuses)]
        conditions += [tasks.c[name] == value for name, value in match.items()]
        stmt = (
            update(tasks)
            .where(*conditions)
            .values({**values, "event_seq": tasks.c.event_seq + 1})
            .returning(tasks.c.event_seq, tasks.c.progress)
        )
        with self._engine.begin() as conn:
            row = conn.execute(stmt).first()
            if row is None:
                return False
            conn.execute(_INSERT_EVENT, _event(task_id, row.event_seq, to_status, row.progress, message, now))
            if also is not None:
                also(conn)
        self._committed(task_id)
        return True

    def claim(
        self,
        task_id: str,
        *,
        node_id: str,
        now: datetime,
        queue_time_ms: int,
        device_emulated: bool = False,
        message: Callable[[TaskRecord], str] | None = None,
    ) -> TaskRecord | None:
        """pending -> running for `node_id` in one UPDATE ... RETURNING: the claimed task
        (attempt incremented), or None when it is absent or not pending.

        For tasks that need nothing checked before they start (no dependencies, no state
        key): the read, the conditional update and the event are one round trip less than
        `get` then `transition`. `message(task)` is the event's message.
        """
        params = {
            "w_task_id": task_id,
            "v_now": now,
            "v_started_at": now,
            "v_queue_time_ms": queue_time_ms,
            "v_executed_on": node_id,
            "v_device_emulated": device_emulated,
        }

        def write(tx: DirectTransaction) -> TaskRecord | None:
            row = tx.returning(_CLAIM, params)
            if row is None:
                return None
            task = TaskRecord(*row)
            text = message(task) if message is not None else None
            tx.execute(_INSERT_EVENT, _event(task_id, task.event_seq, RUNNING, task.progress, text, now))
            return task

        task = self._writes.run(write)
        if task is None:
            return None
        self._committed(task_id)
        return task

    def update_progress(
        self,
        task_id: str,
        progress: int,
        message: str | None = None,
        match: Mapping[str, Any] | None = None,
        forward_only: bool = False,
    ) -> bool:
        """Record progress (0-100) while the task runs; False once it has left `running`.

        `forward_only`: only if above the stored progress (concurrent reporters, e.g. batch
        items, then never move it backwards).
        """
        now = utc_now()
        match = dict(match or {})
        stmt = _progress_statement(tuple(sorted(match)), forward_only)
        params = {f"w_{name}": value for name, value in match.items()}
        params |= {"w_task_id": task_id, "v_progress": progress, "v_updated_at": now}

        def write(tx: DirectTransaction) -> bool:
            row = tx.returning(stmt, params)
            if row is None:
                return False
            tx.execute(_INSERT_EVENT, _event(task_id, row[0], RUNNING, progress, message, now))
            return True

        if not self._writes.run(write):
            return False
        self._committed(task_id)
        return True

    def events_after(self, task_id: str, seq: int) -> list[TaskEvent]:
        """The task's events with a sequence number above `seq`, in order."""
        stmt = (
            select(task_events)
            .where(task_events.c.task_id == task_id, task_events.c.seq > seq)
            .order_by(task_events.c.seq)
        )
        with self._engine.connect() as conn:
            return [TaskEvent(*row) for row in conn.execute(stmt)]

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

    def running_usage(self, tenant_id: str) -> tuple[int, float, float]:
        """(running tasks, cpu, memory_gb) the tenant's running tasks requested."""
        stmt = select(tasks.c.resources).where(tasks.c.tenant_id == tenant_id, tasks.c.status == RUNNING)
        count, cpu, memory = 0, 0.0, 0.0
        with self._engine.connect() as conn:
            for (resources,) in conn.execute(stmt):
                count += 1
                cpu += float((resources or {}).get("cpu", 1))
                memory += float((resources or {}).get("memory_gb", 0.5))
        return count, cpu, memory

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
