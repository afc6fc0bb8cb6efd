"""The runtime's writes to task rows: claim, conditional transitions and progress.

Every status change is a conditional UPDATE (`... WHERE status IN (...)`): Dramatiq
delivers at least once, and a redelivered message must never move a task backwards.
These are the hot writes: their statements are built once per shape and run through the
group commit (see direct.py and group_commit.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ClauseElement,
    Connection,
    Engine,
    Insert,
    Update,
    bindparam,
    func,
    select,
    tuple_,
    update,
)

import runtime.store.admission as admission
from runtime.store.coltypes import utc_now
from runtime.store.direct import DirectTransaction
from runtime.store.group_commit import GroupCommit
from runtime.store.records import PENDING, RUNNING, TaskRecord
from runtime.store.schema import task_events, tasks
from runtime.store.task_rows import INSERT_EVENT, Listeners, event_row

# Columns the runtime may set in a transition. Identity, creation time (the list
# order), status (set by `to_status`) and labels (mirrored in task_labels) are not.
_FIXED_COLUMNS = {"task_id", "tenant_id", "created_at", "status", "labels", "event_seq"}
_TRANSITION_FIELDS = frozenset(tasks.c.keys()) - _FIXED_COLUMNS

# Transitions come in a few shapes (claim, complete, fail, retry...): each shape's UPDATE is
# built once with bind parameters. Building a Core statement for this wide table costs more
# than running it on SQLite.
_TRANSITIONS: dict[tuple[Any, ...], Update] = {}


def _transition_update(
    from_statuses: tuple[str, ...], names: tuple[str, ...], matched: tuple[str, ...], quota: bool
) -> Update:
    """The conditional UPDATE of one transition shape, with bind parameters (no RETURNING)."""
    values: dict[str, Any] = {name: bindparam(f"v_{name}", type_=tasks.c[name].type) for name in names}
    values["event_seq"] = tasks.c.event_seq + 1
    # One bind per status (not an expanding IN): compiled once, run directly.
    statuses = [bindparam(None, status, type_=tasks.c.status.type) for status in from_statuses]
    conditions = [tasks.c.task_id == bindparam("w_task_id"), tasks.c.status.in_(statuses)]
    conditions += [tasks.c[name] == bindparam(f"w_{name}", type_=tasks.c[name].type) for name in matched]
    if quota:
        conditions.append(admission.within_quota())
    return update(tasks).where(*conditions).values(values)


def _transition_statement(
    from_statuses: tuple[str, ...], names: tuple[str, ...], matched: tuple[str, ...], quota: bool = False
) -> Update:
    key = (from_statuses, names, matched, quota)
    stmt = _TRANSITIONS.get(key)
    if stmt is None:
        stmt = _transition_update(from_statuses, names, matched, quota).returning(
            tasks.c.event_seq, tasks.c.progress
        )
        _TRANSITIONS[key] = stmt
    return stmt


# PostgreSQL: the transition and its event in one statement (one round trip, not two):
# `WITH moved AS (UPDATE ... RETURNING ...) INSERT INTO task_events SELECT ... FROM moved`.
# It returns the event's row, so no row means the UPDATE matched nothing, as before.
_MOVES: dict[tuple[Any, ...], Insert] = {}


def _move_statement(
    from_statuses: tuple[str, ...], names: tuple[str, ...], matched: tuple[str, ...], quota: bool
) -> Insert:
    key = (from_statuses, names, matched, quota)
    stmt = _MOVES.get(key)
    if stmt is None:
        moved = (
            _transition_update(from_statuses, names, matched, quota)
            .returning(tasks.c.task_id, tasks.c.event_seq, tasks.c.progress)
            .cte("moved")
        )
        event = select(
            moved.c.task_id,
            moved.c.event_seq,
            bindparam("v_status", type_=task_events.c.status.type),
            moved.c.progress,
            bindparam("e_message", type_=task_events.c.message.type),
            bindparam("e_at", type_=task_events.c.at.type),
        )
        columns = ["task_id", "seq", "status", "progress", "message", "at"]
        stmt = (
            task_events.insert()
            .from_select(columns, event)
            .add_cte(moved)
            .returning(task_events.c.seq, task_events.c.progress)
        )
        _MOVES[key] = stmt
    return stmt


# The claim of a task that needs no pre-checks (see TaskLifecycle.claim): read and
# pending -> running in one statement, within the tenant's quotas (runtime.store.admission).
_CLAIM = (
    update(tasks)
    .where(tasks.c.task_id == bindparam("w_task_id"), tasks.c.status == PENDING, admission.within_quota())
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
        lease_expires_at=bindparam("v_lease_expires_at", type_=tasks.c.lease_expires_at.type),
        event_seq=tasks.c.event_seq + 1,
    )
    .returning(*tasks.c)
)

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


class TaskLifecycle:
    """Claims, transitions and progress of tasks; safe to share between threads.

    Each write also appends its event in the same transaction and, once committed,
    tells the store's listeners.
    """

    def __init__(self, engine: Engine, writes: GroupCommit, listeners: Listeners) -> None:
        self._engine = engine
        self._writes = writes  # shared with TaskRepository's inserts: one group commit
        self._listeners = listeners
        # PostgreSQL: quota-checked claims take admission.CLAIM_LOCK first (runtime.store.admission).
        self._lock_claims = engine.dialect.name == "postgresql"
        # PostgreSQL: a transition and its event in one statement (see _move_statement).
        self._one_statement = engine.dialect.name == "postgresql"

    def transition(
        self,
        task_id: str,
        *,
        from_statuses: tuple[str, ...],
        to_status: str,
        match: Mapping[str, Any] | None = None,
        message: str | None = None,
        also: Callable[[Connection], None] | None = None,
        within_quota: bool = False,
        **fields: Any,
    ) -> bool:
        """Move the task to `to_status` only if it is in one of `from_statuses`.

        `fields` are other columns to set in the same UPDATE (values or SQL
        expressions such as `tasks.c.attempt + 1`). `match` adds equality conditions
        (e.g. the attempt a worker claimed, so a node given up on cannot finish a task
        that was re-queued). `also` runs in the same transaction when the update
        matched (e.g. saving a stateful task's state). `within_quota` (a claim): only
        if the tenant's running tasks leave room for this one (runtime.store.admission).
        False means the task was absent, already elsewhere, or (`within_quota`) held back.
        """
        unknown = fields.keys() - _TRANSITION_FIELDS
        if unknown:
            raise TypeError(f"transition cannot set {sorted(unknown)}")
        now = utc_now()
        values = {"updated_at": now, **fields, "status": to_status}
        match = match or {}
        if also is not None or any(isinstance(v, ClauseElement) for v in (*values.values(), *match.values())):
            return self._transition_with(
                task_id, from_statuses, to_status, values, match, message, also, now, within_quota
            )
        names, matched = tuple(sorted(values)), tuple(sorted(match))
        stmt = _transition_statement(tuple(from_statuses), names, matched, within_quota)
        params = {f"v_{name}": values[name] for name in names}
        params |= {f"w_{name}": match[name] for name in matched}
        params["w_task_id"] = task_id
        lock = within_quota and self._lock_claims

        if self._one_statement:
            move = _move_statement(tuple(from_statuses), names, matched, within_quota)
            params |= {"e_message": message, "e_at": now}

            def write(tx: DirectTransaction) -> bool:
                if lock:
                    tx.once(admission.CLAIM_LOCK, {})
                return tx.returning(move, params) is not None

        else:

            def write(tx: DirectTransaction) -> bool:
                if lock:
                    tx.once(admission.CLAIM_LOCK, {})
                return self._update_then_event(tx, stmt, params, task_id, to_status, message, now)

        if not self._writes.run(write):
            return False
        self._listeners.committed(task_id)
        return True

    @staticmethod
    def _update_then_event(
        tx: DirectTransaction,
        stmt: Update,
        params: dict[str, Any],
        task_id: str,
        to_status: str,
        message: str | None,
        now: datetime,
    ) -> bool:
        """The transition, then its event (SQLite: its statements are in-process calls)."""
        row = tx.returning(stmt, params)
        if row is None:
            return False
        seq, progress = row
        tx.execute(INSERT_EVENT, event_row(task_id, seq, to_status, progress, message, now))
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
        quota: bool = False,
    ) -> bool:
        """`transition` with SQL expressions or an `also` step: through `Connection.execute`."""
        conditions = [tasks.c.task_id == task_id, tasks.c.status.in_(from_statuses)]
        conditions += [tasks.c[name] == value for name, value in match.items()]
        if quota:
            conditions.append(admission.within_quota())
        stmt = (
            update(tasks)
            .where(*conditions)
            .values({**values, "event_seq": tasks.c.event_seq + 1})
            .returning(tasks.c.event_seq, tasks.c.progress)
        )
        with self._engine.begin() as conn:
            if quota and self._lock_claims:
                conn.execute(admission.CLAIM_LOCK)
            row = conn.execute(stmt).first()
            if row is None:
                return False
            event = event_row(task_id, row.event_seq, to_status, row.progress, message, now)
            conn.execute(INSERT_EVENT, event)
            if also is not None:
                also(conn)
        self._listeners.committed(task_id)
        return True

    def claim(
        self,
        task_id: str,
        *,
        node_id: str,
        now: datetime,
        queue_time_ms: int,
        lease_expires_at: datetime | None = None,
        device_emulated: bool = False,
        message: Callable[[TaskRecord], str] | None = None,
    ) -> TaskRecord | None:
        """pending -> running for `node_id` in one UPDATE ... RETURNING: the claimed task
        (attempt incremented, leased until `lease_expires_at`; None: no lease, which the
        reconciler takes for expired), or None when it is absent, not pending, or held back
        by its tenant's quotas (the tenant's running tasks leave no room for it:
        runtime.store.admission; it stays pending).

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
            "v_lease_expires_at": lease_expires_at,
        }

        lock = self._lock_claims

        def write(tx: DirectTransaction) -> TaskRecord | None:
            if lock:
                tx.once(admission.CLAIM_LOCK, {})  # one for every claim of a group commit
            row = tx.returning(_CLAIM, params)
            if row is None:
                return None
            task = TaskRecord(*row)
            text = message(task) if message is not None else None
            tx.execute(INSERT_EVENT, event_row(task_id, task.event_seq, RUNNING, task.progress, text, now))
            return task

        task = self._writes.run(write)
        if task is None:
            return None
        self._listeners.committed(task_id)
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
            tx.execute(INSERT_EVENT, event_row(task_id, row[0], RUNNING, progress, message, now))
            return True

        if not self._writes.run(write):
            return False
        self._listeners.committed(task_id)
        return True

    # -- leases (runtime.execution.reconciler): not per task, once per heartbeat ----------

    def renew_leases(self, attempts: Sequence[tuple[str, int]], until: datetime) -> int:
        """Extends to `until` the lease of each (task id, attempt) still running: one
        UPDATE for all of a worker's running attempts. An attempt that was re-queued (or
        finished) is not renewed. Returns how many were."""
        if not attempts:
            return 0
        stmt = (
            update(tasks)
            .where(tasks.c.status == RUNNING, tuple_(tasks.c.task_id, tasks.c.attempt).in_(list(attempts)))
            .values(lease_expires_at=until)
        )
        with self._engine.begin() as conn:
            return int(conn.execute(stmt).rowcount)

    def mark_sent(self, task_ids: Sequence[str], at: datetime) -> int:
        """Records that these pending tasks' messages were (re)sent at `at`: one UPDATE."""
        if not task_ids:
            return 0
        stmt = (
            update(tasks)
            .where(tasks.c.status == PENDING, tasks.c.task_id.in_(list(task_ids)))
            .values(sent_at=at)
        )
        with self._engine.begin() as conn:
            return int(conn.execute(stmt).rowcount)
