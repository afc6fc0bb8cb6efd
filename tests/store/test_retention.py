"""Retention's delete: finished tasks that ended before a time go, with everything of theirs,
a bounded batch at a time; unfinished tasks and other tenants' rules are left alone."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, select, update

from runtime.store import Store
from runtime.store.retention import Expiry, TaskRetention
from runtime.store.schema import batch_items, task_events, task_labels, tasks
from tests.store.helpers import T0, new_task

ENDED = T0 + timedelta(days=1)
CUTOFF = T0 + timedelta(days=10)


def _task(
    store: Store, tenant: str = "tenant-a", status: str = "completed", ended: datetime = ENDED, **fields: Any
) -> str:
    """A task created at T0 that went `status` at `ended` (its events and labels written)."""
    task_id = store.tasks.insert(new_task(tenant, at=0, labels={"env": "prod"}, **fields)).task_id
    if status != "pending":
        store.lifecycle.transition(task_id, from_statuses=("pending",), to_status="running")
    if status not in ("pending", "running"):
        store.lifecycle.transition(task_id, from_statuses=("running",), to_status=status, result={"ok": 1})
    with store.engine.begin() as conn:
        conn.execute(update(tasks).where(tasks.c.task_id == task_id).values(updated_at=ended))
    return task_id


def _count(store: Store, table: Table, task_id: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(table).where(table.c.task_id == task_id)
        ).scalar_one()


def test_a_finished_task_past_its_age_goes_with_its_events_labels_and_items(store: Store) -> None:
    expired = _task(store, type="batch", payload={"function": "echo", "items": [{}]})
    store.batches.record(expired, 0, "completed", {"ok": 1})
    assert _count(store, task_events, expired) == 2 and _count(store, batch_items, expired) == 1
    assert TaskRetention(store.engine).purge(Expiry(CUTOFF), rows=100) == 1
    assert store.tasks.get(None, expired) is None
    for table in (task_events, task_labels, batch_items):
        assert _count(store, table, expired) == 0


def test_every_finished_status_expires_and_unfinished_tasks_never_do(store: Store) -> None:
    finished = {
        status: _task(store, status=status) for status in ("completed", "failed", "cancelled", "timeout")
    }
    unfinished = [_task(store, status="pending"), _task(store, status="running")]
    assert TaskRetention(store.engine).purge(Expiry(CUTOFF), rows=100) == len(finished)
    assert all(store.tasks.get(None, task_id) is None for task_id in finished.values())
    assert all(store.tasks.get(None, task_id) is not None for task_id in unfinished)


def test_the_time_a_task_ended_decides_not_when_it_was_created(store: Store) -> None:
    late = _task(store, ended=CUTOFF + timedelta(seconds=1))  # created long ago, ended after
    assert TaskRetention(store.engine).purge(Expiry(CUTOFF), rows=100) == 0
    assert store.tasks.get(None, late) is not None


def test_a_purge_deletes_at_most_its_batch_oldest_first(store: Store) -> None:
    ids = [_task(store) for _ in range(5)]
    retention = TaskRetention(store.engine)
    assert retention.purge(Expiry(CUTOFF), rows=2) == 2
    assert retention.purge(Expiry(CUTOFF), rows=2) == 2
    assert retention.purge(Expiry(CUTOFF), rows=2) == 1  # fewer than asked: none left
    assert retention.purge(Expiry(CUTOFF), rows=2) == 0
    assert all(store.tasks.get(None, task_id) is None for task_id in ids)


def test_a_tenant_rule_reaches_only_that_tenant_and_the_default_skips_the_excepted(store: Store) -> None:
    a, b, c = _task(store, "tenant-a"), _task(store, "tenant-b"), _task(store, "tenant-c")
    retention = TaskRetention(store.engine)
    assert retention.purge(Expiry(CUTOFF, tenant_id="tenant-b"), rows=100) == 1
    assert store.tasks.get(None, b) is None and store.tasks.get(None, a) is not None
    assert retention.purge(Expiry(CUTOFF, except_tenants=("tenant-c",)), rows=100) == 1
    assert store.tasks.get(None, a) is None and store.tasks.get(None, c) is not None
