"""The cluster-event rows the triggers write: every task type's submit, start and end, with
the task's type, in the transaction of the change (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from runtime.store import DuplicateIdempotencyKey, Store, TaskRecord
from runtime.store.coltypes import utc_now
from tests.store.helpers import new_task


def _run(store: Store, task_id: str, ending: str) -> None:
    lifecycle = store.lifecycle
    assert lifecycle.transition(
        task_id, from_statuses=("pending",), to_status="running", executed_on="w-1", started_at=utc_now()
    )
    assert lifecycle.transition(task_id, from_statuses=("running",), to_status=ending, completed_at=utc_now())


@pytest.mark.parametrize("task_type", ["stateless", "container"])
def test_a_tasks_submit_start_and_end_are_recorded_with_its_type(store: Store, task_type: str) -> None:
    task = store.tasks.insert(new_task("tenant-a", type=task_type))
    _run(store, task.task_id, "completed")
    events = store.cluster_events.after(0)
    assert [(e.kind, e.status, e.node_id) for e in events] == [
        ("task_submitted", "pending", None),
        ("task_started", "running", "w-1"),
        ("task_completed", "completed", "w-1"),
    ]
    assert {(e.task_id, e.task_type, e.tenant_id) for e in events} == {(task.task_id, task_type, "tenant-a")}


def test_each_ending_is_a_task_completed_naming_its_status(store: Store) -> None:
    for ending in ("failed", "cancelled", "timeout"):
        _run(store, store.tasks.insert(new_task()).task_id, ending)
    ended = [e.status for e in store.cluster_events.after(0) if e.kind == "task_completed"]
    assert ended == ["failed", "cancelled", "timeout"]


def test_a_batch_insert_records_one_submit_per_task(store: Store) -> None:
    inserted = store.tasks.insert_many([new_task(type="stateless"), new_task(type="batch_item")])
    assert all(isinstance(task, TaskRecord) for task in inserted)
    events = store.cluster_events.after(0)
    assert [(e.kind, e.task_id, e.task_type) for e in events] == [
        ("task_submitted", task.task_id, task.type) for task in inserted if isinstance(task, TaskRecord)
    ]


def test_a_refused_duplicate_submit_records_nothing(store: Store) -> None:
    store.tasks.insert(new_task(idempotency_key="once"))
    before = store.cluster_events.bounds()
    with pytest.raises(DuplicateIdempotencyKey):
        store.tasks.insert(new_task(idempotency_key="once"))
    assert store.cluster_events.bounds() == before


def test_a_change_that_is_not_a_start_or_an_end_records_nothing(store: Store) -> None:
    task = store.tasks.insert(new_task())
    before = store.cluster_events.bounds()
    assert store.lifecycle.transition(task.task_id, from_statuses=("pending",), to_status="pending")
    assert store.cluster_events.bounds() == before


def test_a_prune_over_several_batches_deletes_every_expired_row_and_nothing_else(store: Store) -> None:
    from sqlalchemy import event, insert

    from runtime.store.cluster_events import cluster_events

    old, recent = 1_000.0, 2_000.0
    # seq 1..25: too many to keep past the newest 12 (seq <= 13), and seq 15 and 20 too old.
    ages = {seq: old if seq <= 5 or seq in (15, 20) else recent for seq in range(1, 26)}
    with store.engine.begin() as conn:
        conn.execute(
            insert(cluster_events),
            [{"kind": "worker_registered", "node_id": f"n{seq}", "at": ages[seq]} for seq in range(1, 26)],
        )
    seqs = [e.seq for e in store.cluster_events.after(0, limit=100)]
    first = seqs[0]
    expired = {first + n - 1 for n in range(1, 14)} | {first + 14, first + 19}

    deletes: list[int] = []

    def count(
        _conn: object, _cursor: object, statement: str, _params: object, _ctx: object, _many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append(_cursor.rowcount)  # type: ignore[attr-defined]

    event.listen(store.engine, "after_cursor_execute", count)
    try:
        assert store.cluster_events.prune(keep=12, older_than=1_500.0, batch=4, pause=0) == len(expired)
    finally:
        event.remove(store.engine, "after_cursor_execute", count)
    assert len(deletes) > 2 and max(deletes) <= 4, deletes
    assert [e.seq for e in store.cluster_events.after(0, limit=100)] == [s for s in seqs if s not in expired]
    assert store.cluster_events.prune(keep=12, older_than=1_500.0, batch=4, pause=0) == 0
