"""The executor's one outcome path: each status sets its own fields, only for the claimed attempt."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dramatiq.brokers.stub import StubBroker

from runtime.config import RetryPolicy
from runtime.execution.actors import Dispatch
from runtime.execution.batches import Batches
from runtime.execution.executor import Executor, error_detail
from runtime.execution.interrupts import Interrupter
from runtime.execution.nodes import ResourceGate
from runtime.store import Store
from runtime.store.coltypes import utc_now
from tests.store.helpers import new_task


@pytest.fixture
def executor() -> Iterator[Executor]:
    broker = StubBroker()
    with Store.open("sqlite://") as store:
        yield Executor(
            store,
            Dispatch(broker),
            node_id="node-1",
            gate=ResourceGate(cpu=4, memory_gb=8, gpus=0),
            interrupter=Interrupter(),
            retry=RetryPolicy(),
            batches=Batches,
        )
    broker.close()


def test_a_retry_then_a_completion_each_set_their_own_fields(executor: Executor) -> None:
    store = executor.store
    task = store.tasks.insert(new_task())
    assert executor.claim(task, "first") is not None
    detail = error_detail("execution_failed", "ConnectionError: gone", transient=True)
    assert executor.record(task, "pending", "retry 1/3", attempt=1, error=detail)
    retried = store.tasks.get(None, task.task_id)
    assert retried is not None
    assert (retried.status, retried.retry_count, retried.error, retried.progress) == ("pending", 1, detail, 0)

    assert executor.claim(retried, "second") is not None
    # The first attempt's late outcome matches no row: the second attempt owns the task.
    assert not executor.record(retried, "completed", "completed", attempt=1, result={"late": True})
    now = utc_now()
    timing = {"completed_at": now, "duration_ms": 5, "execution_time_ms": 3}
    assert executor.record(retried, "completed", "completed", attempt=2, result={"ok": True}, timing=timing)
    done = store.tasks.get(None, task.task_id)
    assert done is not None
    assert (done.status, done.result, done.error, done.progress) == ("completed", {"ok": True}, None, 100)
    assert (done.completed_at, done.duration_ms, done.execution_time_ms) == (now, 5, 3)


def test_a_task_that_never_started_fails_from_pending(executor: Executor) -> None:
    store = executor.store
    task = store.tasks.insert(new_task())
    detail = error_detail("dependency_failed", "dependency did not complete: task_x is missing")
    assert not executor.record(task, "failed", "dependency_failed", error=detail)  # not running
    assert executor.record(task, "failed", "dependency_failed", from_status="pending", error=detail)
    failed = store.tasks.get(None, task.task_id)
    assert failed is not None
    assert (failed.status, failed.error, failed.result, failed.started_at) == ("failed", detail, None, None)
