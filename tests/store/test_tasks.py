from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from runtime.store import ChangeListener, DuplicateIdempotencyKey, Store, TaskNotCancellable
from runtime.store.schema import task_labels, tasks
from tests.store.helpers import T0, new_task


def _label_rows(store: Store, task_id: str) -> dict[str, str]:
    stmt = select(task_labels.c.key, task_labels.c.value).where(task_labels.c.task_id == task_id)
    with store.engine.connect() as conn:
        return {key: value for key, value in conn.execute(stmt)}


def test_inserted_task_reads_back_identical(store: Store) -> None:
    submitted = new_task(
        payload={"function": "echo", "data": {"z": 1, "a": [1, 2]}},
        priority="high",
        timeout_seconds=60,
        idempotency_key="key-1",
        labels={"env": "production", "team": "data"},
        tee_required=True,
        state_key="state-1",
        dependencies=["task_x"],
        resources={"cpu": 2, "memory_gb": 4},
        pool="tee",
    )
    inserted = store.tasks.insert(submitted)
    assert inserted.task_id.startswith("task_")
    assert (inserted.status, inserted.progress, inserted.attempt) == ("pending", 0, 0)
    assert inserted.created_at == submitted.created_at
    assert inserted.created_at.tzinfo is not None

    stored = store.tasks.get("tenant-a", inserted.task_id)
    assert stored == inserted
    assert list(stored.payload["data"]) == ["z", "a"]  # the client's key order survives
    assert _label_rows(store, inserted.task_id) == {"env": "production", "team": "data"}


def test_task_without_labels_stores_no_label_rows(store: Store) -> None:
    task = store.tasks.insert(new_task())
    assert task.labels == {}
    assert _label_rows(store, task.task_id) == {}


def test_get_without_tenant_finds_any_tenants_task(store: Store) -> None:
    task = store.tasks.insert(new_task("tenant-b"))
    assert store.tasks.get(None, task.task_id) == task
    assert store.tasks.get(None, "task_missing") is None


def test_another_tenants_task_is_absent_for_get_list_and_cancel(store: Store) -> None:
    theirs = store.tasks.insert(new_task("tenant-b"))
    assert store.tasks.get("tenant-a", theirs.task_id) is None
    page = store.tasks.list("tenant-a")
    assert (page.tasks, page.total, page.has_more) == ([], 0, False)
    assert store.tasks.cancel("tenant-a", theirs.task_id, "mine now") is None
    assert store.tasks.get("tenant-b", theirs.task_id) == theirs  # untouched


def test_reused_idempotency_key_raises_with_the_existing_task_id(store: Store) -> None:
    first = store.tasks.insert(new_task(idempotency_key="once", labels={"env": "prod"}))
    with pytest.raises(DuplicateIdempotencyKey) as raised:
        store.tasks.insert(new_task(idempotency_key="once", labels={"env": "dev"}))
    assert raised.value.existing_task_id == first.task_id
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tasks)).scalar_one() == 1
    assert _label_rows(store, first.task_id) == {"env": "prod"}


def test_idempotency_keys_are_per_tenant_and_absent_keys_never_collide(store: Store) -> None:
    store.tasks.insert(new_task("tenant-a", idempotency_key="same"))
    store.tasks.insert(new_task("tenant-b", idempotency_key="same"))
    store.tasks.insert(new_task("tenant-a"))
    store.tasks.insert(new_task("tenant-a"))
    assert store.figures.count_by_status()["pending"] == 4


def test_concurrent_submits_with_one_key_store_exactly_one_task(threaded_store: Store) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def submit() -> None:
        barrier.wait()
        try:
            outcomes.append(threaded_store.tasks.insert(new_task(idempotency_key="k")).task_id)
        except DuplicateIdempotencyKey as duplicate:
            outcomes.append("dup:" + duplicate.existing_task_id)

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [outcome for outcome in outcomes if not outcome.startswith("dup:")]
    assert len(outcomes) == 6
    assert len(winners) == 1
    assert sorted(outcomes) == sorted([winners[0]] + ["dup:" + winners[0]] * 5)


@pytest.mark.parametrize("status", ["pending", "running"])
def test_cancelling_an_unfinished_task_marks_it_cancelled(store: Store, status: str) -> None:
    task = store.tasks.insert(new_task())
    if status == "running":
        assert store.lifecycle.transition(task.task_id, from_statuses=("pending",), to_status=status)
    now = T0 + timedelta(hours=1)
    cancelled = store.tasks.cancel("tenant-a", task.task_id, "No longer needed", now)
    assert cancelled is not None
    assert (cancelled.status, cancelled.cancelled_at) == ("cancelled", now)
    assert cancelled.cancel_reason == "No longer needed"
    assert cancelled.labels == task.labels
    assert store.tasks.get("tenant-a", task.task_id) == cancelled


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled", "timeout"])
def test_cancelling_a_finished_task_raises_not_cancellable(store: Store, status: str) -> None:
    task = store.tasks.insert(new_task())
    assert store.lifecycle.transition(task.task_id, from_statuses=("pending",), to_status=status)
    with pytest.raises(TaskNotCancellable) as raised:
        store.tasks.cancel("tenant-a", task.task_id, None)
    assert raised.value.status == status


def test_cancelling_an_unknown_task_returns_none(store: Store) -> None:
    assert store.tasks.cancel("tenant-a", "task_missing") is None


def test_transition_never_moves_a_completed_task_back_to_running(store: Store) -> None:
    task = store.tasks.insert(new_task())
    lifecycle = store.lifecycle
    assert lifecycle.transition(task.task_id, from_statuses=("pending",), to_status="running")
    assert lifecycle.transition(
        task.task_id, from_statuses=("running",), to_status="completed", result={"ok": True}
    )
    # A redelivered message replays "start": nothing changes.
    assert not lifecycle.transition(task.task_id, from_statuses=("pending",), to_status="running")
    assert not lifecycle.transition(task.task_id, from_statuses=("running",), to_status="failed")
    stored = store.tasks.get(None, task.task_id)
    assert stored is not None
    assert (stored.status, stored.result) == ("completed", {"ok": True})


def test_transition_sets_fields_and_sql_expressions_in_the_same_update(store: Store) -> None:
    task = store.tasks.insert(new_task())
    started = T0 + timedelta(seconds=2)
    assert store.lifecycle.transition(
        task.task_id,
        from_statuses=("pending",),
        to_status="running",
        started_at=started,
        executed_on="grey-worker-7",
        attempt=tasks.c.attempt + 1,
        queue_time_ms=2000,
    )
    stored = store.tasks.get(None, task.task_id)
    assert stored is not None
    assert (stored.status, stored.started_at, stored.executed_on) == (
        "running",
        started,
        "grey-worker-7",
    )
    assert (stored.attempt, stored.queue_time_ms) == (1, 2000)
    assert stored.updated_at > task.updated_at


@pytest.mark.parametrize("field", ["task_id", "tenant_id", "created_at", "status", "labels", "nonsense"])
def test_transition_refuses_identity_status_label_and_unknown_fields(store: Store, field: str) -> None:
    task = store.tasks.insert(new_task())
    refused: dict[str, Any] = {field: "x"}  # any name at all may reach transition's **fields
    with pytest.raises(TypeError, match=field):
        store.lifecycle.transition(task.task_id, from_statuses=("pending",), to_status="running", **refused)


def test_transition_of_an_unknown_task_is_refused(store: Store) -> None:
    assert not store.lifecycle.transition("task_missing", from_statuses=("pending",), to_status="x")


def test_progress_is_recorded_only_while_running(store: Store) -> None:
    task = store.tasks.insert(new_task())
    assert not store.lifecycle.update_progress(task.task_id, 10)
    store.lifecycle.transition(task.task_id, from_statuses=("pending",), to_status="running")
    assert store.lifecycle.update_progress(task.task_id, 50)
    store.lifecycle.transition(task.task_id, from_statuses=("running",), to_status="completed")
    assert not store.lifecycle.update_progress(task.task_id, 60)
    stored = store.tasks.get(None, task.task_id)
    assert stored is not None
    assert stored.progress == 50


def test_unfinished_returns_pending_and_running_tasks_oldest_first(store: Store) -> None:
    ids = [store.tasks.insert(new_task(f"tenant-{i % 2}", at=10 - i)).task_id for i in range(5)]
    store.lifecycle.transition(ids[1], from_statuses=("pending",), to_status="running")
    store.lifecycle.transition(ids[2], from_statuses=("pending",), to_status="completed")
    store.tasks.cancel("tenant-1", ids[3])
    expected = [ids[4], ids[1], ids[0]]  # created at 6, 9, 10 seconds
    assert [task.task_id for task in store.scheduling.unfinished()] == expected
    assert [task.task_id for task in store.scheduling.unfinished(limit=2)] == expected[:2]


def test_running_on_lists_what_a_node_was_running(store: Store) -> None:
    mine, other, done = (store.tasks.insert(new_task(at=i)) for i in range(3))
    for task, node in ((mine, "w1"), (other, "w2"), (done, "w1")):
        store.lifecycle.transition(
            task.task_id, from_statuses=("pending",), to_status="running", executed_on=node
        )
    store.lifecycle.transition(done.task_id, from_statuses=("running",), to_status="completed")
    assert [task.task_id for task in store.scheduling.running_on("w1")] == [mine.task_id]


def test_counts_queue_age_and_throughput_figures(store: Store) -> None:
    old = store.tasks.insert(new_task("tenant-a", at=0))
    store.tasks.insert(new_task("tenant-a", at=5))
    running = store.tasks.insert(new_task("tenant-b", at=1))
    store.lifecycle.transition(running.task_id, from_statuses=("pending",), to_status="running")
    for at, status in ((2, "completed"), (3, "failed"), (4, "completed")):
        task = store.tasks.insert(new_task("tenant-b", at=at))
        store.lifecycle.transition(
            task.task_id,
            from_statuses=("pending",),
            to_status=status,
            completed_at=T0 + timedelta(minutes=at),
        )

    assert store.figures.count_by_status() == {
        "pending": 2,
        "running": 1,
        "completed": 2,
        "failed": 1,
        "cancelled": 0,
        "timeout": 0,
    }
    assert store.figures.count_by_status("tenant-b", statuses=("pending", "running")) == {
        "pending": 0,
        "running": 1,
    }
    assert store.figures.oldest_pending_created_at() == old.created_at
    assert store.figures.completed_since(T0 + timedelta(minutes=3)) == 2
    assert store.figures.completed_since(T0 + timedelta(minutes=5)) == 0


def test_oldest_pending_is_none_on_an_empty_queue(store: Store) -> None:
    assert store.figures.oldest_pending_created_at() is None


def test_claim_reads_and_starts_a_pending_task_in_one_update(store: Store) -> None:
    task = store.tasks.insert(new_task(at=0))
    now = T0 + timedelta(seconds=2)
    claimed = store.lifecycle.claim(
        task.task_id, node_id="n1", now=now, queue_time_ms=2000, message=lambda t: f"attempt {t.attempt}"
    )
    assert claimed is not None
    assert (claimed.status, claimed.attempt, claimed.executed_on) == ("running", 1, "n1")
    assert (claimed.started_at, claimed.queue_time_ms) == (now, 2000)
    [event] = store.tasks.events_after(task.task_id, 0)
    assert (event.seq, event.status, event.message) == (claimed.event_seq, "running", "attempt 1")
    # A duplicate message finds it running: nothing happens.
    assert store.lifecycle.claim(task.task_id, node_id="n2", now=now, queue_time_ms=0) is None
    # Back to pending (a retry): claimed again, the first start and queue time stay.
    assert store.lifecycle.transition(task.task_id, from_statuses=("running",), to_status="pending")
    later = now + timedelta(seconds=5)
    again = store.lifecycle.claim(task.task_id, node_id="n2", now=later, queue_time_ms=7000)
    assert again is not None
    assert (again.attempt, again.executed_on, again.started_at, again.queue_time_ms) == (2, "n2", now, 2000)
    assert store.lifecycle.claim("missing", node_id="n1", now=now, queue_time_ms=0) is None


class _Heard(ChangeListener):
    def __init__(self) -> None:
        self.task_ids: list[str] = []

    def after_commit(self, task_id: str) -> None:
        self.task_ids.append(task_id)


def test_listeners_hear_of_lifecycle_writes_and_cancels_alike(store: Store) -> None:
    heard = _Heard()
    store.listeners.append(heard)
    try:
        ran, cancelled = store.tasks.insert(new_task(at=0)), store.tasks.insert(new_task(at=1))
        assert heard.task_ids == []  # a submit is no event
        store.lifecycle.claim(ran.task_id, node_id="n1", now=T0, queue_time_ms=0)
        store.lifecycle.update_progress(ran.task_id, 50)
        store.lifecycle.transition(ran.task_id, from_statuses=("running",), to_status="completed")
        assert not store.lifecycle.transition(ran.task_id, from_statuses=("running",), to_status="failed")
        store.tasks.cancel("tenant-a", cancelled.task_id)
        assert heard.task_ids == [ran.task_id] * 3 + [cancelled.task_id]
    finally:
        store.listeners.remove(heard)  # the PostgreSQL store is shared by the session
