"""The cluster-event sequence and /ws/telemetry: numbering, replay, tenant isolation, the
slow client, the connection limit, and credentials."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import MutableMapping
from typing import Any

import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse

from handlers.cloudai.telemetry_socket import cloudai_wants
from runtime.gateway.app import Platform
from runtime.services import Services
from runtime.services.telemetry import Resync, Subscriber
from runtime.store import ClusterEventRecord
from tests.support.cloudai import headers_for, seed_task, seed_worker

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _drain(subscriber: Subscriber) -> list[Any]:
    items = []
    while not subscriber.queue.empty():
        items.append(subscriber.queue.get_nowait())
    return items


def _kinds(items: list[Any]) -> list[tuple[str, str | None]]:
    return [(item.kind, item.status) for item in items if isinstance(item, ClusterEventRecord)]


async def test_changes_become_numbered_events_in_order(services: Services) -> None:
    seed_worker(services, "w-1")
    seed_task(services, status="completed", worker="w-1")
    seed_task(services, status="failed", worker="w-1")
    seed_task(services, status="pending")  # submitted, not started
    services.store.nodes.set_status("w-1", "down")
    events = services.store.cluster_events.after(0)
    assert [(e.kind, e.status) for e in events] == [
        ("worker_registered", "active"),
        ("task_submitted", "pending"),
        ("task_started", "running"),
        ("task_completed", "completed"),
        ("task_submitted", "pending"),
        ("task_started", "running"),
        ("task_completed", "failed"),
        ("task_submitted", "pending"),
        ("worker_disconnected", "down"),
    ]
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert events[2].tenant_id == "acme" and events[2].node_id == "w-1"
    assert events[2].task_type == "container"
    assert events[0].tenant_id is None and events[0].task_type is None


async def test_cloudais_filter_takes_only_container_tasks_and_its_own_kinds(services: Services) -> None:
    hub = services.telemetry
    cloudai = await hub.subscribe("acme", wants=cloudai_wants)
    everything = await hub.subscribe("acme")
    seed_task(services, status="completed", type="stateless", worker="w-1")
    container = seed_task(services, status="completed", worker="w-1")
    seed_worker(services, "w-2")
    assert await hub.poll_once() == 7
    assert [(e.kind, e.task_id) for e in _drain(cloudai)] == [
        ("task_started", container.task_id),
        ("task_completed", container.task_id),
        ("worker_registered", None),
    ]
    assert [e.kind for e in _drain(everything)].count("task_submitted") == 2
    assert cloudai.last_seq == everything.last_seq  # both have passed the same sequence


async def test_a_subscriber_gets_what_happens_after_it_subscribed(services: Services) -> None:
    seed_worker(services, "w-old")
    subscriber = await services.telemetry.subscribe("acme")
    seed_task(services, status="completed", worker="w-1")
    assert await services.telemetry.poll_once() == 3
    assert _kinds(_drain(subscriber)) == [
        ("task_submitted", "pending"),
        ("task_started", "running"),
        ("task_completed", "completed"),
    ]
    services.telemetry.unsubscribe(subscriber)


async def test_task_events_reach_only_their_tenant_and_worker_events_everyone(services: Services) -> None:
    hub = services.telemetry
    acme, other = await hub.subscribe("acme"), await hub.subscribe("other")
    seed_task(services, tenant="acme", status="running", worker="w-1")
    seed_worker(services, "w-2")
    await hub.poll_once()
    assert _kinds(_drain(acme)) == [
        ("task_submitted", "pending"),
        ("task_started", "running"),
        ("worker_registered", "active"),
    ]
    assert _kinds(_drain(other)) == [("worker_registered", "active")]
    assert acme.last_seq == other.last_seq  # both have passed the same sequence


async def test_a_reconnecting_client_gets_what_it_missed_and_no_more(services: Services) -> None:
    hub = services.telemetry
    first = await hub.subscribe("acme")
    seed_task(services, status="completed", worker="w-1")
    await hub.poll_once()
    seen = _drain(first)
    last = seen[1].seq  # it saw task_submitted and task_started, then went away
    hub.unsubscribe(first)
    seed_worker(services, "w-2")
    await hub.poll_once()
    again = await hub.subscribe("acme", since=last)
    replayed = _drain(again)
    assert _kinds(replayed) == [("task_completed", "completed"), ("worker_registered", "active")]
    assert replayed[0].seq == seen[2].seq


async def test_a_client_older_than_the_retained_events_is_told_to_resync(services: Services) -> None:
    hub = services.telemetry
    for n in range(3):
        seed_worker(services, f"w-{n}")
    _, newest = services.store.cluster_events.bounds()
    assert services.store.cluster_events.prune(keep=1, older_than=0) == 2
    again = await hub.subscribe("acme", since=newest - 3)
    items = _drain(again)
    assert isinstance(items[0], Resync) and items[0].oldest == newest
    assert _kinds(items[1:]) == [("worker_registered", "active")]


async def test_a_subscriber_that_does_not_drain_its_queue_is_marked_overflowed(services: Services) -> None:
    hub = services.telemetry
    hub.settings = dataclasses.replace(hub.settings, queue_size=4)
    slow, fast = await hub.subscribe("acme"), await hub.subscribe("acme")
    for n in range(6):
        seed_worker(services, f"w-{n}")
        await hub.poll_once()
        _drain(fast)
    assert slow.overflowed.is_set() and slow.queue.qsize() == 4  # bounded: no more than 4 kept
    assert not fast.overflowed.is_set()


# -- /ws/telemetry ---------------------------------------------------------------------------


def _connect(platform: Platform, query: str = "", **kwargs: Any) -> Any:
    client = TestClient(platform.gateways["cloudai"].rest)
    return client.websocket_connect(f"/ws/telemetry{query}", **kwargs)


def _fast(services: Services, **changes: Any) -> None:
    hub = services.telemetry
    hub.settings = dataclasses.replace(hub.settings, **{"interval_seconds": 0.2, **changes})


def _until(ws: Any, kind: str, limit: int = 50) -> dict[str, Any]:
    for _ in range(limit):
        message = ws.receive_json()
        if message["type"] == kind:
            return dict(message)
    raise AssertionError(f"no {kind} in {limit} messages")


@SQLITE
def test_the_feed_starts_with_a_telemetry_update_in_the_references_shape(every_api: Platform) -> None:
    services = every_api.services
    _fast(services)
    seed_worker(services, "w-1", cpu=8.0, memory_gb=16.0)
    running = seed_task(services, status="running", worker="w-1")
    seed_task(services, tenant="other", status="running", worker="w-1")
    with _connect(every_api, headers=headers_for(services, "acme")) as ws:
        update = ws.receive_json()
    assert update["type"] == "telemetry_update" and set(update) == {"type", "timestamp", "seq", "data"}
    assert update["timestamp"].endswith("Z")
    data = update["data"]
    (worker,) = data["workers"]
    assert worker["worker_id"] == "w-1" and worker["active_tasks"] == 2
    assert worker["cpu_usage"] == pytest.approx(100 * 2 / 8) and worker["memory_usage"] == pytest.approx(25.0)
    assert isinstance(worker["last_heartbeat"], int)
    assert [t["task_id"] for t in data["tasks"]] == [running.task_id]  # acme's only
    assert data["tasks"][0]["status"] == "running" and data["tasks"][0]["worker_id"] == "w-1"
    assert data["cluster"]["total_workers"] == 1 and data["cluster"]["active_workers"] == 1
    assert data["cluster"]["available_cpu"] == pytest.approx(6.0)


@SQLITE
def test_events_are_pushed_as_they_happen_and_replayed_after_a_reconnect(every_api: Platform) -> None:
    services = every_api.services
    _fast(services)
    headers = headers_for(services, "acme")
    with _connect(every_api, headers=headers) as ws:
        ws.receive_json()
        task = seed_task(services, status="completed", worker="w-1")
        started = _until(ws, "task_started")
        assert started["data"] == {"task_id": task.task_id, "status": "running", "worker_id": "w-1"}
        last = started["seq"]
    seed_worker(services, "w-2")  # while it was away: the completion, then this
    with _connect(every_api, f"?since={last}", headers=headers) as ws:
        kinds = [ws.receive_json() for _ in range(3)]
    events = [m for m in kinds if m["type"] != "telemetry_update"]
    assert [m["type"] for m in events] == ["task_completed", "worker_registered"]
    assert events[0]["data"]["status"] == "completed" and events[0]["data"]["outcome"] == "completed"
    assert events[0]["seq"] > last and events[1]["seq"] > events[0]["seq"]


@SQLITE
def test_the_socket_sends_only_container_tasks_and_never_a_submit(every_api: Platform) -> None:
    """The feed records every task type and submits too; CloudAI's socket sends what it
    always has: container tasks' starts and ends."""
    services = every_api.services
    _fast(services, interval_seconds=30.0)
    with _connect(every_api, headers=headers_for(services, "acme")) as ws:
        ws.receive_json()
        other = seed_task(services, status="completed", type="stateless", worker="w-1")
        container = seed_task(services, status="completed", worker="w-1")
        messages = [ws.receive_json() for _ in range(2)]
    assert [(m["type"], m["data"]["task_id"]) for m in messages] == [
        ("task_started", container.task_id),
        ("task_completed", container.task_id),
    ]
    kinds = [(e.kind, e.task_id) for e in services.store.cluster_events.after(0)]
    assert ("task_submitted", other.task_id) in kinds and ("task_completed", other.task_id) in kinds


@SQLITE
def test_a_bad_since_is_refused_with_a_400(every_api: Platform) -> None:
    headers = headers_for(every_api.services, "acme")
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        _connect(every_api, "?since=abc", headers=headers),
    ):
        pass
    assert refused.value.status_code == 400
    assert refused.value.json()["error"]["code"] == "INVALID_REQUEST"


@SQLITE
def test_browsers_may_send_the_key_as_a_query_parameter_or_a_subprotocol(every_api: Platform) -> None:
    key = headers_for(every_api.services, "acme")["X-API-Key"]
    with _connect(every_api, f"?api_key={key}") as ws:
        assert ws.receive_json()["type"] == "telemetry_update"
    with _connect(every_api, subprotocols=["api_key", key]) as ws:
        assert ws.accepted_subprotocol == "api_key"
        assert ws.receive_json()["type"] == "telemetry_update"


@SQLITE
def test_without_the_scope_the_upgrade_is_forbidden(every_api: Platform) -> None:
    headers = headers_for(every_api.services, "acme", frozenset({"tasks:read"}))
    with pytest.raises(WebSocketDenialResponse) as refused, _connect(every_api, headers=headers):
        pass
    assert refused.value.status_code == 403


@SQLITE
def test_the_sixth_connection_of_a_client_is_refused_with_429(every_api: Platform) -> None:
    services = every_api.services
    _fast(services, interval_seconds=30.0)
    headers = headers_for(services, "acme")
    opened = [_connect(every_api, headers=headers) for _ in range(5)]
    sessions = [connection.__enter__() for connection in opened]
    try:
        for ws in sessions:
            ws.receive_json()
        with pytest.raises(WebSocketDenialResponse) as refused, _connect(every_api, headers=headers):
            pass
        assert refused.value.status_code == 429
        assert refused.value.json()["error"]["code"] == "RATE_LIMITED"
        with _connect(every_api, headers=headers_for(services, "acme")) as other_key:
            assert other_key.receive_json()["type"] == "telemetry_update"  # per client, not per tenant
    finally:
        for connection in opened:
            connection.__exit__(None, None, None)
    with _connect(every_api, headers=headers) as ws:  # slots are given back
        assert ws.receive_json()["type"] == "telemetry_update"


@SQLITE
async def test_a_client_that_never_reads_is_closed_with_1008(every_api: Platform) -> None:
    """Its socket blocks every send (as a full TCP window does): the queue fills, the server
    closes with 1008 instead of holding more."""
    services = every_api.services
    _fast(services, interval_seconds=30.0, queue_size=4)
    key = headers_for(services, "acme")["X-API-Key"]
    incoming: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
    await incoming.put({"type": "websocket.connect"})
    sent: list[MutableMapping[str, Any]] = []
    blocked = asyncio.Event()

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "websocket.send":
            blocked.set()
            await asyncio.Event().wait()  # never drained

    scope = {
        "type": "websocket",
        "path": "/ws/telemetry",
        "raw_path": b"/ws/telemetry",
        "query_string": b"",
        "headers": [(b"x-api-key", key.encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8083),
        "scheme": "ws",
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }
    app = every_api.gateways["cloudai"].rest
    connection = asyncio.ensure_future(app(scope, incoming.get, send))
    await asyncio.wait_for(blocked.wait(), 10)
    for n in range(8):
        seed_worker(services, f"w-{n}")
    await asyncio.wait_for(connection, 10)
    close = sent[-1]
    assert close["type"] == "websocket.close" and close["code"] == 1008
    assert "too slow" in close["reason"]
    assert services.telemetry.subscribers == set()


async def test_retention_keeps_the_newest_events_and_none_older_than_the_age(services: Services) -> None:
    for n in range(4):
        seed_worker(services, f"w-{n}")
    events = services.store.cluster_events
    _, newest = events.bounds()
    assert events.prune(keep=2, older_than=0) == 2
    assert events.bounds() == (newest - 1, newest)
    assert events.prune(keep=100, older_than=time.time() + 1) == 2  # all older than the age
    assert events.bounds() == (0, 0)
