"""/dashboard/live: cookie-authenticated, one telemetry subscription per page, the tenant's
task events only (and every worker event)."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from runtime.services import Services
from runtime.services.auth import SCOPES
from runtime.store.coltypes import utc_now
from tests.gateway.dashboard.conftest import mounted
from tests.support.cloudai import seed_task, seed_worker
from tests.support.platform import make_key

ORIGIN = {"origin": "http://testserver"}


def _signed_in(client: TestClient, key: str) -> None:
    answer = client.post("/dashboard/session", json={"api_key": key})
    assert answer.status_code == 200, answer.text


def _receive(socket: Any, timeout: float = 10.0) -> dict[str, Any]:
    """The next message, or a failure after `timeout` (TestClient's receive waits forever;
    a daemon thread waits instead, so a missing message fails the test, not hangs it)."""
    got: queue.Queue[Any] = queue.Queue()

    def wait() -> None:
        try:
            got.put(socket.receive_json())
        except BaseException as error:
            got.put(error)

    threading.Thread(target=wait, daemon=True).start()
    try:
        answer = got.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"nothing received in {timeout} s") from None
    if isinstance(answer, BaseException):
        raise answer
    message: dict[str, Any] = answer
    return message


def _next(socket: Any, kind: str) -> dict[str, Any]:
    """The next message of `kind` (the feed may interleave others)."""
    for _ in range(50):
        message = _receive(socket)
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} message")


@pytest.fixture
def live_client(services: Services, tmp_path: Any) -> Any:
    with TestClient(mounted(services, tmp_path)) as client:
        yield client


def test_the_socket_refuses_a_page_without_a_session(live_client: TestClient, services: Services) -> None:
    with (
        pytest.raises((WebSocketDisconnect, WebSocketDenialResponse)),
        live_client.websocket_connect("/dashboard/live", headers=ORIGIN),
    ):
        pass
    key = make_key(services, "acme")
    with (
        pytest.raises((WebSocketDisconnect, WebSocketDenialResponse)),
        live_client.websocket_connect(f"/dashboard/live?api_key={key}", headers={**ORIGIN, "x-api-key": key}),
    ):
        pass
    assert services.telemetry.subscribers == set()


def test_the_socket_refuses_another_origin(live_client: TestClient, services: Services) -> None:
    _signed_in(live_client, make_key(services, "acme"))
    with (
        pytest.raises((WebSocketDisconnect, WebSocketDenialResponse)),
        live_client.websocket_connect("/dashboard/live", headers={"origin": "https://evil.example"}),
    ):
        pass


def test_a_task_event_reaches_its_tenant_only_over_one_subscription(
    live_client: TestClient, services: Services
) -> None:
    _signed_in(live_client, make_key(services, "acme"))
    with live_client.websocket_connect("/dashboard/live", headers=ORIGIN) as socket:
        hello = _receive(socket)
        assert (hello["type"], hello["tenant_id"]) == ("hello", "acme")
        assert len(services.telemetry.subscribers) == 1
        theirs = seed_task(services, "beta", status="completed")
        ours = seed_task(services, "acme", status="completed", type="stateless")  # any API's task
        submitted, started, ended = _next(socket, "task"), _next(socket, "task"), _next(socket, "task")
        assert (submitted["task_id"], submitted["status"]) == (ours.task_id, "pending")
        assert "completed_at" not in submitted  # only an ending carries the latency times
        assert (started["task_id"], started["status"]) == (ours.task_id, "running")
        assert (ended["task_id"], ended["status"]) == (ours.task_id, "completed")
        assert ended["completed_at"] >= ended["created_at"]  # for the latency chart
        assert theirs.task_id not in {submitted["task_id"], started["task_id"], ended["task_id"]}
        assert len(services.telemetry.subscribers) == 1


def test_a_worker_going_down_reaches_the_page(live_client: TestClient, services: Services) -> None:
    seed_worker(services, "grey-worker-9")
    _signed_in(live_client, make_key(services, "acme", SCOPES))
    with live_client.websocket_connect("/dashboard/live", headers=ORIGIN) as socket:
        _receive(socket)
        services.store.nodes.set_status("grey-worker-9", "down")
        message = _next(socket, "worker")
        assert (message["worker_id"], message["alive"], message["state"]) == ("grey-worker-9", False, "down")


def test_watching_a_task_streams_any_api_task_to_the_page(
    live_client: TestClient, services: Services
) -> None:
    task = seed_task(services, "acme", type="stateless", resources={})
    _signed_in(live_client, make_key(services, "acme"))
    with live_client.websocket_connect("/dashboard/live", headers=ORIGIN) as socket:
        _receive(socket)
        socket.send_json({"watch": task.task_id})
        first = _next(socket, "task")
        assert (first["source"], first["status"]) == ("watch", "pending")
        services.store.lifecycle.transition(
            task.task_id,
            from_statuses=("pending",),
            to_status="running",
            executed_on="w",
            started_at=utc_now(),
        )
        services.runtime.bus.after_commit(task.task_id)
        running = _next(socket, "task")
        assert (running["task_id"], running["status"]) == (task.task_id, "running")
        socket.send_json({"watch": "task_of_someone_else"})
        assert _next(socket, "watch_error")["task_id"] == "task_of_someone_else"


def test_revoking_the_key_closes_its_open_socket(
    live_client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("runtime.gateway.dashboard.live.RECHECK_SECONDS", 0.05)
    key, record = services.auth.mint("acme", SCOPES)
    _signed_in(live_client, key)
    with live_client.websocket_connect("/dashboard/live", headers=ORIGIN) as socket:
        _receive(socket)
        services.store.keys.revoke(record.key_id)
        with pytest.raises(WebSocketDisconnect) as closed:
            _receive(socket)
        assert closed.value.code == 1008
