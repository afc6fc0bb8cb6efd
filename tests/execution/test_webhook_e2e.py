"""Webhooks end to end: registered over REST, tasks run by a worker pool, deliveries sent by
the coordinator's process; a receiver that hangs never holds up submits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook

from tests.execution.test_webhook_delivery import verify_webhook
from tests.support.webhook_receiver import Receiver, receiving

SECRET = "e2e-secret-value"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as made:
        yield made


@pytest.fixture(autouse=True)
def fast_webhooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator allows the local receiver; retries and polls are short."""
    monkeypatch.setenv("GREY_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32")
    monkeypatch.setenv("GREY_WEBHOOK_RETRY_SCHEDULE", "0.2,0.2")
    monkeypatch.setenv("GREY_WEBHOOK_POLL_SECONDS", "0.05")


async def until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not within {timeout}s")
        await asyncio.sleep(0.05)


def delivered(receiver: Receiver) -> dict[tuple[str, str], dict[str, Any]]:
    """(task id, event) -> the body, of every POST received."""
    bodies = [json.loads(r.body) for r in receiver.received]
    return {(b["task"]["task_id"], b["event"]): b for b in bodies}


async def test_lifecycle_events_reach_the_subscriber_signed(make_gateway, receiver: Receiver) -> None:
    gateway = await make_gateway(worker_threads=2)
    events = ["task.completed", "task.failed", "task.cancelled", "task.timeout"]
    body = {"url": receiver.url(), "events": events, "secret": SECRET}
    created = await gateway.client.post("/v1/webhooks", json=body, headers=gateway.headers)
    assert created.status_code == 201, created.text

    done = await gateway.submit(payload={"function": "echo", "data": {"hello": "grey"}})
    failed = await gateway.submit(payload={"function": "fail", "data": {"message": "no"}})
    slow = await gateway.submit(payload={"function": "sleep", "data": {"seconds": 30}})
    await gateway.wait(slow["task_id"], statuses=("running",))
    cancel = await gateway.client.delete(f"/v1/tasks/{slow['task_id']}", headers=gateway.headers)
    assert cancel.status_code == 200, cancel.text
    expected = {
        (done["task_id"], "task.completed"),
        (failed["task_id"], "task.failed"),
        (slow["task_id"], "task.cancelled"),
    }
    await until(lambda: expected <= set(delivered(receiver)), "three deliveries")
    assert len(receiver.received) == 3  # nothing else was subscribed to
    completed = delivered(receiver)[(done["task_id"], "task.completed")]
    assert completed["task"]["status"] == "completed"
    assert completed["task"]["result"] is not None
    assert delivered(receiver)[(failed["task_id"], "task.failed")]["task"]["error"]
    for got in receiver.received:
        assert verify_webhook(got.text, got.headers["X-Grey-Signature"], SECRET)
        Webhook(SECRET.encode()).verify(got.body, got.headers)


async def test_a_hanging_receiver_never_holds_up_submits(make_gateway, receiver: Receiver) -> None:
    gateway = await make_gateway(worker_threads=2)
    body = {"url": receiver.url(), "events": ["task.completed"], "secret": SECRET}
    assert (await gateway.client.post("/v1/webhooks", json=body, headers=gateway.headers)).status_code == 201
    receiver.gate.clear()  # every POST hangs until released
    first = await gateway.submit(payload={"function": "echo", "data": {}})
    await until(lambda: receiver.received, "the first POST (hanging)")
    submitted = [await gateway.submit(payload={"function": "echo", "data": {"n": n}}) for n in range(20)]
    await gateway.wait([t["task_id"] for t in submitted])  # all ran while the POST hung
    receiver.gate.set()
    ids = {first["task_id"], *(t["task_id"] for t in submitted)}
    await until(lambda: ids <= {task for task, _ in delivered(receiver)}, "every delivery")
