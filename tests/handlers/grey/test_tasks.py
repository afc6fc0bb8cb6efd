"""The `tasks` operations, each over REST and gRPC: the same answers and the same errors."""

from __future__ import annotations

from runtime.services import Services
from tests.support.platform import make_key

SUBMIT = {"type": "stateless", "payload": {"function": "echo", "data": {"key": "value"}}}


async def test_submit_stores_a_pending_task_that_get_returns(call, key) -> None:
    submitted = await call("submitTask", key, **SUBMIT, labels={"env": "prod"}, priority="high")
    assert submitted.ok and submitted.data["status"] == "pending"
    assert submitted.data["task_id"].startswith("task_")
    got = await call("getTask", key, task_id=submitted.data["task_id"])
    assert got.data["status"] == "pending"
    assert got.data["priority"] == "high"
    assert got.data["labels"] == {"env": "prod"}
    assert got.data["payload"] == SUBMIT["payload"]
    assert got.data["timeout_seconds"] == 300


async def test_get_of_unknown_task_is_task_not_found(call, key) -> None:
    outcome = await call("getTask", key, task_id="task_missing")
    assert outcome.code == "task_not_found"


async def test_another_tenants_task_is_invisible_as_if_absent(call, key, services: Services) -> None:
    other = make_key(services, "globex")
    task_id = (await call("submitTask", key, **SUBMIT)).data["task_id"]
    assert (await call("getTask", other, task_id=task_id)).code == "task_not_found"
    assert (await call("cancelTask", other, task_id=task_id)).code == "task_not_found"
    assert (await call("getTaskResult", other, task_id=task_id)).code == "task_not_found"
    listed = await call("listTasks", other)
    assert listed.data.get("total", 0) == 0
    assert (await call("getTask", key, task_id=task_id)).data["status"] == "pending"


async def test_list_filters_by_status_type_label_and_pages_with_a_cursor(call, key) -> None:
    ids = []
    for n in range(5):
        outcome = await call("submitTask", key, **SUBMIT, labels={"n": str(n % 2)})
        ids.append(outcome.data["task_id"])
    await call("submitTask", key, type="batch", payload={"items": []})
    await call("cancelTask", key, task_id=ids[0])
    pending = await call("listTasks", key, status="pending", type="stateless")
    assert pending.data["total"] == 4
    cancelled_or_pending = await call("listTasks", key, status="pending,cancelled", type="stateless")
    assert cancelled_or_pending.data["total"] == 5
    even = await call("listTasks", key, label=["n=0"])
    assert sorted(t["task_id"] for t in even.data["tasks"]) == sorted([ids[0], ids[2], ids[4]])
    seen: list[str] = []
    cursor = None
    while True:
        arguments = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await call("listTasks", key, **arguments)
        assert page.data["total"] == 6
        seen += [t["task_id"] for t in page.data["tasks"]]
        if not page.data.get("has_more"):
            break
        cursor = page.data["next_cursor"]
    assert len(seen) == len(set(seen)) == 6


async def test_list_rejects_a_cursor_it_did_not_issue(call, key) -> None:
    assert (await call("listTasks", key, cursor="not-a-cursor")).code == "invalid_parameter"


async def test_cancel_of_a_pending_task_then_again_is_not_cancellable(call, key) -> None:
    task_id = (await call("submitTask", key, **SUBMIT)).data["task_id"]
    cancelled = await call("cancelTask", key, task_id=task_id, reason="no longer needed")
    assert cancelled.data["status"] == "cancelled" and cancelled.data["cancelled_at"]
    again = await call("cancelTask", key, task_id=task_id)
    assert again.code == "task_not_cancellable"


async def test_idempotency_key_reuse_is_duplicate_task(call, key, rest) -> None:
    first = await call("submitTask", key, **SUBMIT, idempotency_key="k-1")
    again = await call("submitTask", key, **SUBMIT, idempotency_key="k-1")
    assert again.code == "duplicate_task"
    response = await rest.post(
        "/v1/tasks", json=SUBMIT | {"idempotency_key": "k-1"}, headers={"X-API-Key": key}
    )
    assert response.json()["error"]["details"]["task_id"] == first.data["task_id"]


async def test_result_of_an_unfinished_task_is_result_not_ready(call, key) -> None:
    task_id = (await call("submitTask", key, **SUBMIT)).data["task_id"]
    assert (await call("getTaskResult", key, task_id=task_id)).code == "result_not_ready"


async def test_invalid_submit_is_invalid_payload_never_stored(call, key) -> None:
    assert (await call("submitTask", key, type="nonsense", payload={})).code == "invalid_payload"
    assert (await call("submitTask", key, type="stateless", payload={}, timeout_seconds=0)).code == (
        "invalid_payload"
    )
    assert (await call("listTasks", key)).data.get("total", 0) == 0
