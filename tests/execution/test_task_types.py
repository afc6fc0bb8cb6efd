"""Dependencies and the task types of Grey Distributed: stateful, pipeline, batch."""

from __future__ import annotations

import hashlib
import itertools

from tests.execution.conftest import Gateway


async def test_dependencies_wait_for_completion_and_fail_with_the_dependency(gateway: Gateway) -> None:
    gateway.pool()
    first = (await gateway.submit(payload={"function": "sleep", "data": {"seconds": 0.3}}))["task_id"]
    broken = (await gateway.submit(payload={"function": "fail", "data": {}}))["task_id"]
    after = (await gateway.submit(payload={"function": "echo", "data": 1}, dependencies=[first]))["task_id"]
    doomed = (await gateway.submit(payload={"function": "echo"}, dependencies=[first, broken]))["task_id"]
    unknown = await gateway.client.post(
        "/v1/tasks",
        json={"type": "stateless", "payload": {"function": "echo"}, "dependencies": [first, "task_nope"]},
        headers=gateway.headers,
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["details"]["unknown"] == ["task_nope"]
    done = {t.task_id: t for t in await gateway.wait([first, broken, after, doomed])}
    ran, waited_for, failed = done[after], done[first], done[doomed]
    assert ran.status == "completed"
    assert ran.started_at is not None and waited_for.completed_at is not None
    assert ran.started_at >= waited_for.completed_at
    assert failed.status == "failed"
    assert failed.error is not None and failed.error["code"] == "dependency_failed"
    assert failed.started_at is None


async def test_a_cancelled_dependency_fails_its_dependents(gateway: Gateway) -> None:
    target = (await gateway.submit(payload={"function": "echo"}))["task_id"]
    dependent = (await gateway.submit(payload={"function": "echo"}, dependencies=[target]))["task_id"]
    await gateway.client.delete(f"/v1/tasks/{target}", headers=gateway.headers)
    gateway.pool()
    [task] = await gateway.wait(dependent)
    assert task.status == "failed" and task.error is not None and task.error["code"] == "dependency_failed"


async def test_stateful_tasks_of_one_key_run_one_at_a_time_in_order_on_a_persisted_state(
    gateway: Gateway,
) -> None:
    gateway.pool(threads=4)
    ids = [
        (
            await gateway.submit(
                type="stateful", state_key="acct-1", payload={"function": "counter", "data": {"add": n}}
            )
        )["task_id"]
        for n in range(1, 7)
    ]
    other = (await gateway.submit(type="stateful", state_key="acct-2", payload={"function": "counter"}))[
        "task_id"
    ]
    tasks = await gateway.wait([*ids, other])
    assert all(t.status == "completed" for t in tasks)
    values = [t.result["value"] for t in tasks[:6] if t.result]
    assert values == list(itertools.accumulate(range(1, 7)))  # 1, 3, 6, ...: submission order
    for earlier, later in itertools.pairwise(tasks[:6]):
        assert earlier.completed_at is not None and later.started_at is not None
        assert later.started_at >= earlier.completed_at  # never overlapping
    state, version = gateway.store.states.get("acme", "acct-1")
    assert (state["value"], version) == (21, 6)
    assert tasks[6].result == {"previous": 0, "value": 1}


async def test_pipelines_run_sequential_parallel_and_hybrid_and_record_each_step(gateway: Gateway) -> None:
    gateway.pool()
    sequential = {
        "mode": "sequential",
        "steps": [
            {"function": "echo", "data": "to be or not to be"},
            {"function": "wordcount"},
            {"function": "sha256"},
        ],
    }
    parallel = {
        "mode": "parallel",
        "steps": [{"function": "sha256", "data": "a"}, {"function": "sha256", "data": "b"}],
    }
    hybrid = {
        "mode": "hybrid",
        "steps": [
            [{"function": "echo", "data": "x"}, {"function": "echo", "data": "y"}],
            {"function": "sha256"},
        ],
    }
    ids = [
        (await gateway.submit(type="pipeline", payload=p))["task_id"] for p in (sequential, parallel, hybrid)
    ]
    tasks = await gateway.wait(ids)
    assert [t.status for t in tasks] == ["completed"] * 3
    seq, par, hyb = (t.result for t in tasks)
    assert seq is not None and par is not None and hyb is not None
    assert [s["function"] for s in seq["steps"]] == ["echo", "wordcount", "sha256"]
    assert all(s["status"] == "completed" and "execution_time_ms" in s for s in seq["steps"])
    assert seq["steps"][1]["output"]["words"] == 6  # the output of one step is the next's input
    assert par["output"] == [
        {"sha256": hashlib.sha256(b"a").hexdigest(), "bytes": 1},
        {"sha256": hashlib.sha256(b"b").hexdigest(), "bytes": 1},
    ]
    assert hyb["steps"][2]["stage"] == 1
    assert hyb["output"]["sha256"] == hashlib.sha256(b'["x","y"]').hexdigest()
    progress = [e.message for e in gateway.store.tasks.events_after(ids[0], 0) if e.status == "running"]
    assert any("stage 2/3" in (m or "") for m in progress)


async def test_a_failing_step_fails_the_pipeline_with_the_steps_so_far(gateway: Gateway) -> None:
    gateway.pool()
    payload = {"steps": [{"function": "echo", "data": {}}, {"function": "fail"}, {"function": "echo"}]}
    task_id = (await gateway.submit(type="pipeline", payload=payload))["task_id"]
    [task] = await gateway.wait(task_id)
    assert task.status == "failed" and task.error is not None and task.error["code"] == "step_failed"
    assert task.result is not None and [s["status"] for s in task.result["steps"]] == ["completed", "failed"]


async def test_a_batch_fans_out_items_and_reports_progress_as_done_of_total(gateway: Gateway) -> None:
    gateway.pool()
    items = [f"item-{n}" for n in range(10)]
    task_id = (await gateway.submit(type="batch", payload={"function": "sha256", "items": items}))["task_id"]
    [task] = await gateway.wait(task_id)
    assert task.status == "completed" and task.progress == 100
    assert task.result is not None and task.result["total"] == 10 and task.result["failed"] == 0
    assert [r["sha256"] for r in task.result["results"]] == [
        hashlib.sha256(i.encode()).hexdigest() for i in items
    ]
    events = gateway.store.tasks.events_after(task_id, 0)
    done = [int(e.message.split("/")[0]) for e in events if e.message and e.message.endswith("items done")]
    assert done[-1] == 10 and len(done) >= 3 and done == sorted(set(done))  # strictly rising
    progress = [e.progress for e in events]
    assert progress == sorted(progress)


async def test_a_batch_with_a_failing_item_fails_after_all_items_finish(gateway: Gateway) -> None:
    gateway.pool()
    items = [{"message": "fine", "times": 0}, {"message": "broken"}, {"times": 0}]
    task_id = (await gateway.submit(type="batch", payload={"function": "fail", "items": items}))["task_id"]
    [task] = await gateway.wait(task_id)
    assert task.status == "failed" and task.error is not None and task.error["code"] == "batch_item_failed"
    assert task.result is not None and (task.result["completed"], task.result["failed"]) == (2, 1)
    assert list(task.result["errors"]) == ["1"]
