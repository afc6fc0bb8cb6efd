"""Hot writes: group commit, the direct statements, and failures that stay with their caller."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from runtime.store import DuplicateIdempotencyKey, Store
from runtime.store.coltypes import utc_now
from tests.store.helpers import new_task


def test_insert_many_stores_every_task_but_the_one_whose_key_was_used(store: Store) -> None:
    first = store.tasks.insert(new_task(idempotency_key="used"))
    outcomes = store.tasks.insert_many(
        [new_task(labels={"n": "1"}), new_task(idempotency_key="used"), new_task(labels={"n": "3"})]
    )

    assert isinstance(outcomes[1], DuplicateIdempotencyKey)
    assert outcomes[1].existing_task_id == first.task_id
    stored = [outcome for outcome in outcomes if not isinstance(outcome, Exception)]
    assert len(stored) == 2
    for record in stored:
        assert store.tasks.get(None, record.task_id) == record
    assert store.figures.count_by_status()["pending"] == 3


def test_concurrent_claims_and_completions_from_many_threads_all_commit(threaded_store: Store) -> None:
    tasks, lifecycle = threaded_store.tasks, threaded_store.lifecycle
    records = [tasks.insert(new_task()) for _ in range(60)]

    def run(task_id: str) -> bool:
        claimed = lifecycle.claim(task_id, node_id="node-1", now=utc_now(), queue_time_ms=1)
        assert claimed is not None and claimed.attempt == 1
        return lifecycle.transition(
            task_id,
            from_statuses=("running",),
            to_status="completed",
            match={"attempt": 1},
            message="completed",
            result={"ok": True},
            completed_at=utc_now(),
        )

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(run, [record.task_id for record in records]))

    assert threaded_store.figures.count_by_status()["completed"] == 60
    for record in records[:5]:
        events = tasks.events_after(record.task_id, 0)
        assert [(event.seq, event.status) for event in events] == [(1, "running"), (2, "completed")]


def test_a_second_claim_of_the_same_task_in_one_batch_finds_it_running(threaded_store: Store) -> None:
    task = threaded_store.tasks.insert(new_task())

    def claim(_: int) -> bool:
        now = utc_now()
        return threaded_store.lifecycle.claim(task.task_id, node_id="n", now=now, queue_time_ms=0) is not None

    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(claim, range(8)))

    assert claims.count(True) == 1
