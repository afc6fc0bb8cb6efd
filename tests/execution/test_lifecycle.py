"""Submit -> run -> complete, and every other way a task ends, on the embedded broker and Redis."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from tests.execution.conftest import Gateway

ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
ECHO: dict[str, Any] = {"payload": {"function": "echo", "data": {"key": "value"}}}


def sleep(seconds: float) -> dict[str, Any]:
    return {"payload": {"function": "sleep", "data": {"seconds": seconds}}}


async def test_a_submitted_task_runs_and_records_its_lifecycle_and_metrics(gateway: Gateway) -> None:
    task_id = (await gateway.submit(**ECHO))["task_id"]
    not_yet = await gateway.client.get(f"/v1/tasks/{task_id}/result", headers=gateway.headers)
    assert (not_yet.status_code, not_yet.json()["error"]["code"]) == (409, "result_not_ready")
    pool = gateway.pool()
    await gateway.wait(task_id)
    task = await gateway.task(task_id)
    assert task["status"] == "completed"
    assert task["progress"] == 100
    assert task["executed_on"] == pool.node_id
    assert task["created_at"] <= task["started_at"] <= task["completed_at"]
    assert task["duration_ms"] >= 0
    assert task["result"] == {"key": "value"}
    assert task["pool"] == "cpu" and task["device_emulated"] is False
    metrics = task["metrics"]
    assert metrics["retry_count"] == 0
    assert metrics["queue_time_ms"] >= 0 and metrics["execution_time_ms"] >= 0
    result = await gateway.client.get(f"/v1/tasks/{task_id}/result", headers=gateway.headers)
    assert result.status_code == 200
    assert result.json()["result"] == {"key": "value"}
    missing = await gateway.client.get("/v1/tasks/task_nope/result", headers=gateway.headers)
    assert missing.status_code == 404


async def test_built_in_functions_compute_their_results(gateway: Gateway) -> None:
    gateway.pool()
    calls = {
        "sha256": (
            "abc",
            {"sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "bytes": 3},
        ),
        "wordcount": (
            {"text": "a b a\nc"},
            {"words": 4, "unique": 3, "lines": 2, "top": [["a", 2], ["b", 1], ["c", 1]]},
        ),
        "noop": (None, {}),
        "matmul": ({"n": 8}, None),
    }
    ids = {
        name: (await gateway.submit(payload={"function": name, "data": data}))["task_id"]
        for name, (data, _) in calls.items()
    }
    await gateway.wait(list(ids.values()))
    for name, (_, expected) in calls.items():
        task = gateway.record(ids[name])
        assert task.status == "completed", (name, task.error)
        if expected is not None:
            assert task.result == expected
    matmul = gateway.record(ids["matmul"]).result
    assert matmul is not None and (matmul["backend"], matmul["device"], matmul["emulated"]) == (
        "numpy",
        "cpu",
        False,
    )


async def test_unknown_functions_and_rejected_data_are_invalid_payload_and_never_stored(
    gateway: Gateway,
) -> None:
    bad: list[dict[str, Any]] = [
        {"payload": {"function": "no_such_function"}},
        {"payload": {"function": "sleep", "data": {"seconds": "soon"}}},
        {"payload": {"function": "fail", "data": {"unexpected": 1}}},
        {"type": "stateful", "payload": {"function": "counter"}},  # no state_key
        {"type": "batch", "payload": {"function": "sleep", "items": [{"seconds": 1}, {"seconds": -1}]}},
        {"type": "pipeline", "payload": {"steps": [{"function": "echo"}, {"function": "nope"}]}},
        {"type": "pipeline", "payload": {"mode": "sideways", "steps": [{"function": "echo"}]}},
    ]
    for body in bad:
        response = await gateway.client.post(
            "/v1/tasks", json={"type": "stateless", **body}, headers=gateway.headers
        )
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "invalid_payload"
    listed = await gateway.client.get("/v1/tasks", headers=gateway.headers)
    assert listed.json()["total"] == 0


async def test_timeout_is_enforced(gateway: Gateway) -> None:
    gateway.pool()
    task_id = (await gateway.submit(**sleep(30), timeout_seconds=1))["task_id"]
    [task] = await gateway.wait(task_id, timeout=5)
    assert task.status == "timeout"
    assert task.error is not None and task.error["code"] == "timeout"
    assert 900 <= (task.execution_time_ms or 0) < 3000


async def test_a_timeout_also_stops_code_that_never_checks(gateway: Gateway) -> None:
    from runtime.execution.functions import task_function

    @task_function("test_busy_loop")
    def busy(data: Any, ctx: Any) -> None:
        while True:  # never calls ctx.check / ctx.sleep: only the thread interrupt stops it
            sum(range(1000))

    gateway.pool()
    task_id = (await gateway.submit(payload={"function": "test_busy_loop"}, timeout_seconds=1))["task_id"]
    [task] = await gateway.wait(task_id, timeout=5)
    assert task.status == "timeout"
    follow = (await gateway.submit(**ECHO))["task_id"]  # the thread is free again
    assert (await gateway.wait(follow))[0].status == "completed"


async def test_cancel_stops_a_running_task_which_never_completes_afterwards(gateway: Gateway) -> None:
    gateway.pool(threads=1)
    task_id = (await gateway.submit(**sleep(2)))["task_id"]
    await gateway.wait(task_id, ("running",))
    response = await gateway.client.delete(f"/v1/tasks/{task_id}", headers=gateway.headers)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    # The only worker thread is free at once: the next task runs long before the 2 s sleep would end.
    follow = (await gateway.submit(**ECHO))["task_id"]
    [done] = await gateway.wait(follow, timeout=1.5)
    assert done.status == "completed"
    await asyncio.sleep(0.3)
    task = gateway.record(task_id)
    assert task.status == "cancelled" and task.result is None
    again = await gateway.client.delete(f"/v1/tasks/{task_id}", headers=gateway.headers)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "task_not_cancellable")


async def test_a_cancelled_pending_task_never_starts_and_a_finished_one_is_not_cancellable(
    gateway: Gateway,
) -> None:
    task_id = (await gateway.submit(**ECHO))["task_id"]
    response = await gateway.client.delete(f"/v1/tasks/{task_id}", headers=gateway.headers)
    assert response.status_code == 200
    gateway.pool()
    done_id = (await gateway.submit(**ECHO))["task_id"]
    await gateway.wait(done_id)
    await asyncio.sleep(0.2)
    assert gateway.record(task_id).started_at is None
    finished = await gateway.client.delete(f"/v1/tasks/{done_id}", headers=gateway.headers)
    assert (finished.status_code, finished.json()["error"]["code"]) == (409, "task_not_cancellable")


async def test_transient_errors_are_retried_with_backoff_at_most_three_times(gateway: Gateway) -> None:
    gateway.pool()
    recovers = (await gateway.submit(payload={"function": "fail", "data": {"transient": True, "times": 2}}))[
        "task_id"
    ]
    gives_up = (await gateway.submit(payload={"function": "fail", "data": {"transient": True}}))["task_id"]
    permanent = (await gateway.submit(payload={"function": "fail", "data": {"message": "boom"}}))["task_id"]
    await gateway.wait([recovers, gives_up, permanent])
    ok = gateway.record(recovers)
    assert (ok.status, ok.retry_count, ok.result) == ("completed", 2, {"succeeded_after_retries": 2})
    exhausted = gateway.record(gives_up)
    assert (exhausted.status, exhausted.retry_count) == ("failed", 3)
    assert exhausted.error is not None and exhausted.error["transient"] is True
    failed = gateway.record(permanent)
    assert (failed.status, failed.retry_count, failed.attempt) == ("failed", 0, 1)
    assert (
        failed.error is not None
        and failed.error["code"] == "execution_failed"
        and "boom" in failed.error["message"]
    )
    assert (await gateway.task(gives_up))["metrics"]["retry_count"] == 3
    # Backoff: the retries' events are spaced out, growing.
    events = gateway.store.tasks.events_after(gives_up, 0)
    starts = [
        e.at for e in events if e.status == "running" and e.progress == 0 and "attempt" in (e.message or "")
    ]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 3 and gaps[0] >= 0.05 and gaps[2] > gaps[0]


async def test_a_redelivered_message_never_runs_a_finished_task_again(gateway: Gateway) -> None:
    gateway.pool()
    task_id = (await gateway.submit(**sleep(0.05)))["task_id"]
    [done] = await gateway.wait(task_id)
    for _ in range(3):
        gateway.services.runtime.dispatch.send(done)  # what a redelivery does
    await asyncio.sleep(0.5)
    again = gateway.record(task_id)
    assert (again.status, again.attempt, again.event_seq, again.completed_at) == (
        "completed",
        1,
        done.event_seq,
        done.completed_at,
    )


async def test_a_restarted_gateway_runs_every_unfinished_task_again(
    make_gateway: Any, broker_url: str
) -> None:
    first = await make_gateway(broker_url=broker_url)
    ids = [(await first.submit(**ECHO))["task_id"] for _ in range(5)]
    runtime = first.services.runtime
    # One task was running on this process's in-process pool when it died.
    from runtime.execution.runtime import embedded_node_id

    node = embedded_node_id(first.services.node_id)
    assert first.store.lifecycle.transition(
        ids[0], from_statuses=("pending",), to_status="running", executed_on=node, attempt=1
    )
    if runtime.kind == "embedded":
        assert runtime.queue_depth() == 5  # the messages die with the process
    await first.client.aclose()
    first.services.close()
    second = await make_gateway(broker_url=broker_url, worker_threads=4, port=18080)  # same node id
    done = await second.wait(ids)
    assert [t.status for t in done] == ["completed"] * 5
    assert [t.attempt for t in done] == [2, 1, 1, 1, 1]
