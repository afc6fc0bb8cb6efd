"""The gateway's intake: waiting submits are stored and sent together, each answered alone."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from runtime.execution.errors import InvalidPayload, NotSent
from runtime.execution.intake import Intake
from runtime.store import NewTask, Store, TaskRecord
from tests.store.helpers import new_task


class Checks:
    """Store checks that refuse the tasks named in `refuse`; every submit is checked."""

    def __init__(self, *refuse: str) -> None:
        self.refuse = set(refuse)

    def needed(self, new: NewTask) -> bool:
        return True

    def check(self, new: NewTask) -> None:
        if new.task_id in self.refuse:
            raise InvalidPayload("Unknown dependencies: task_x", field="dependencies")


class Broker:
    """Records what the intake sends, in batches; can be told to fail one task's send."""

    def __init__(self, release: threading.Event | None = None) -> None:
        self.batches: list[list[str]] = []
        self.release = release
        self.holding = threading.Event()
        self.refuse: set[str] = set()

    def send_many(self, tasks: list[TaskRecord]) -> list[Any]:
        if self.release is not None and not self.batches:
            self.holding.set()
            self.release.wait(5)  # hold the first batch: the next submits queue up behind it
        self.batches.append([task.task_id for task in tasks])
        return [ConnectionError("broker down") if t.task_id in self.refuse else t for t in tasks]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'grey.db'}")


async def test_submits_waiting_together_are_stored_and_sent_in_one_batch(store: Store) -> None:
    release = threading.Event()
    broker = Broker(release)
    intake = Intake(store, broker.send_many, Checks())
    try:
        first = asyncio.ensure_future(intake.submit(new_task()))
        assert await asyncio.to_thread(broker.holding.wait, 5)
        rest = [asyncio.ensure_future(intake.submit(new_task())) for _ in range(20)]
        while intake._queue.qsize() < 20:
            await asyncio.sleep(0.001)
        release.set()
        records = await asyncio.gather(first, *rest)
    finally:
        intake.stop()

    assert [len(batch) for batch in broker.batches] == [1, 20]
    assert all(store.tasks.get(None, r.task_id) == r for r in records)
    assert store.figures.count_by_status()["pending"] == 21


async def test_a_failing_check_or_send_refuses_that_submit_alone(store: Store) -> None:
    broker = Broker()
    refused, unsent, fine = new_task(), new_task(), new_task()
    intake = Intake(store, broker.send_many, Checks(refused.task_id))
    broker.refuse.add(unsent.task_id)

    try:
        outcomes = await asyncio.gather(
            intake.submit(refused),
            intake.submit(unsent),
            intake.submit(fine),
            return_exceptions=True,
        )
    finally:
        intake.stop()

    assert isinstance(outcomes[0], InvalidPayload)
    assert isinstance(outcomes[1], NotSent)
    assert outcomes[1].details == {"task_id": unsent.task_id}
    assert isinstance(outcomes[2], TaskRecord) and outcomes[2].task_id == fine.task_id
    assert store.tasks.get(None, refused.task_id) is None
    # Stored but not sent: pending in the store, where a restart's recovery finds it.
    unsent_record = store.tasks.get(None, unsent.task_id)
    assert unsent_record is not None and unsent_record.status == "pending"


async def test_stop_finishes_the_submits_already_queued(store: Store) -> None:
    release = threading.Event()
    broker = Broker(release)
    intake = Intake(store, broker.send_many, Checks())
    waiting = [asyncio.ensure_future(intake.submit(new_task()))]
    assert await asyncio.to_thread(broker.holding.wait, 5)  # a batch in flight
    waiting += [asyncio.ensure_future(intake.submit(new_task())) for _ in range(4)]
    while intake._queue.qsize() < 4:  # and four more queued behind it
        await asyncio.sleep(0.001)
    stopper = threading.Thread(target=intake.stop)
    stopper.start()
    release.set()
    records = await asyncio.gather(*waiting)
    stopper.join(5)
    assert len(records) == 5 and sum(len(batch) for batch in broker.batches) == 5


async def test_a_broker_refusing_the_whole_batch_answers_each_stored_task_with_its_id(store: Store) -> None:
    def refuse_all(tasks: list[TaskRecord]) -> list[Any]:
        raise ConnectionError("broker down")

    intake = Intake(store, refuse_all, Checks())
    news = [new_task() for _ in range(3)]
    try:
        outcomes = await asyncio.gather(*(intake.submit(new) for new in news), return_exceptions=True)
    finally:
        intake.stop()
    for new, outcome in zip(news, outcomes, strict=True):
        assert isinstance(outcome, NotSent) and outcome.details == {"task_id": new.task_id}
        stored = store.tasks.get(None, new.task_id)
        assert stored is not None and stored.status == "pending"
