"""Live updates: SSE `/stream` and `/events`, gRPC StreamTaskStatus, across gateways."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from grpclib.client import Channel
from grpclib.const import Cardinality

from bench.serving import free_port
from generated.grey.grpc_service import RPC_MESSAGES
from runtime.execution import events
from tests.execution.conftest import Gateway, broker_url_for

SLEEP: dict[str, Any] = {"payload": {"function": "sleep", "data": {"seconds": 0.6}}}


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def statuses(updates: list[dict[str, Any]]) -> list[str]:
    collapsed: list[str] = []
    for update in updates:
        if not collapsed or collapsed[-1] != update["status"]:
            collapsed.append(update["status"])
    return collapsed


async def sse(gateway: Gateway, task_id: str, path: str = "stream") -> list[dict[str, Any]]:
    response = await gateway.client.get(f"/v1/tasks/{task_id}/{path}", headers=gateway.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events_ = parse_sse(response.text)
    assert events_[-1] == ("done", {})
    assert all(name == "status" for name, _ in events_[:-1])
    return [data for _, data in events_[:-1]]


@pytest.mark.parametrize("path", ["stream", "events"])
async def test_sse_delivers_every_transition_and_progress_in_order_then_done(
    gateway: Gateway, path: str
) -> None:
    task_id = (await gateway.submit(**SLEEP))["task_id"]
    stream = asyncio.ensure_future(sse(gateway, task_id, path))
    await asyncio.sleep(0.1)
    gateway.pool()
    updates = await asyncio.wait_for(stream, 10)
    assert statuses(updates) == ["pending", "running", "completed"]
    progress = [u["progress"] for u in updates]
    assert progress == sorted(progress) and progress[-1] == 100
    assert any(u["status"] == "running" and 0 < u["progress"] < 100 and u.get("message") for u in updates)
    # Exactly the stored events, in order, after the state at subscription.
    stored = gateway.store.tasks.events_after(task_id, 0)
    assert [(u["status"], u["progress"]) for u in updates[1:]] == [(e.status, e.progress) for e in stored]


async def test_a_late_subscriber_gets_the_current_state_first_and_a_finished_stream_ends_at_once(
    gateway: Gateway,
) -> None:
    gateway.pool()
    task_id = (await gateway.submit(payload={"function": "sleep", "data": {"seconds": 1.0}}))["task_id"]
    await gateway.wait(task_id, ("running",))
    await asyncio.sleep(0.3)
    updates = await asyncio.wait_for(sse(gateway, task_id), 10)
    assert updates[0]["status"] == "running"  # the state when it joined, not the history
    assert updates[-1]["status"] == "completed"
    started = time.monotonic()
    finished = await sse(gateway, task_id)
    assert time.monotonic() - started < 0.5
    assert [u["status"] for u in finished] == ["completed"]
    missing = await gateway.client.get("/v1/tasks/task_missing/stream", headers=gateway.headers)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "task_not_found")


async def test_grpc_stream_task_status_delivers_the_same_updates(gateway: Gateway) -> None:
    server = gateway.platform.grpc_server()
    port = free_port()
    await server.start("127.0.0.1", port)
    channel = Channel("127.0.0.1", port)
    # Declared: from RPC_MESSAGES' plain `type`s mypy cannot infer the stream's message types.
    request_type: type[Any]
    response_type: type[Any]
    request_type, response_type = RPC_MESSAGES["GreyService.StreamTaskStatus"]
    try:
        task_id = (await gateway.submit(**SLEEP))["task_id"]
        gateway.pool()
        received: list[dict[str, Any]] = []
        async with channel.request(
            "/grey.v1.GreyService/StreamTaskStatus",
            Cardinality.UNARY_STREAM,
            request_type,
            response_type,
            metadata={"authorization": f"Bearer {gateway.key}"},
            timeout=10,
        ) as stream:
            await stream.send_message(request_type(task_id=task_id), end=True)
            async for message in stream:
                received.append({"status": message.status, "progress": message.progress})
        assert statuses(received) == ["pending", "running", "completed"] or statuses(received) == [
            "running",
            "completed",
        ]
        assert received[-1] == {"status": "completed", "progress": 100}
    finally:
        channel.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("shared", ["redis", "postgresql"])
async def test_streams_work_from_another_gateway_sharing_redis_or_postgresql(
    make_gateway: Any, shared: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    # Only the doorbell across processes can make this quick: the store poll is set to 30 s.
    monkeypatch.setattr(events, "POLL_SECONDS", 30.0)
    if shared == "redis":
        broker, database = broker_url_for("redis"), None
    else:
        url = request.getfixturevalue("postgres_url")
        from runtime.store import Store
        from tests.conftest import empty_store

        with Store.open(url) as store:
            empty_store(store)
        broker, database = "embedded", url.render_as_string(hide_password=False)
    runner = await make_gateway(broker_url=broker, database_url=database)
    watcher = await make_gateway(broker_url=broker, database_url=database)
    assert runner.services.runtime.bus is not watcher.services.runtime.bus
    assert watcher.services.runtime.bus.kind == shared
    watcher.key = runner.key
    runner.pool()
    task_id = (await runner.submit(**SLEEP))["task_id"]
    started = time.monotonic()
    updates = await asyncio.wait_for(sse(watcher, task_id), 10)
    assert statuses(updates)[-2:] == ["running", "completed"]
    assert time.monotonic() - started < 5
