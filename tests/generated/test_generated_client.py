"""The generated REST client: typed answers, and Grey Distributed's retry table."""

from __future__ import annotations

import time

import httpx
import pytest

from generated.grey import models
from generated.grey.client import AsyncGreyClient, GreyApiError, GreyClient, RetryPolicy

FAST = RetryPolicy(max_retries=3, backoff_base=0.01, backoff_max=0.05)


def _envelope(code: str) -> dict:
    return {"error": {"code": code, "message": code, "details": {"x": 1}, "request_id": "req_1"}}


def _sequence(*responses: httpx.Response) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    return httpx.MockTransport(handle), seen


def test_429_waits_for_retry_after_then_succeeds() -> None:
    ok = {"task_id": "task_1", "status": "pending", "created_at": "2024-01-15T10:30:00Z"}
    transport, seen = _sequence(
        httpx.Response(429, json=_envelope("rate_limited"), headers={"Retry-After": "1"}),
        httpx.Response(201, json=ok),
    )
    client = GreyClient("http://grey", "k", retry=RetryPolicy(backoff_base=0.01), transport=transport)
    started = time.monotonic()
    answer = client.submit_task({"type": "stateless", "payload": {}})
    assert time.monotonic() - started >= 1.0
    assert isinstance(answer, models.SubmitTaskResponse) and answer.task_id == "task_1"
    assert len(seen) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_back_off_and_give_up_after_the_retries(status: int) -> None:
    transport, seen = _sequence(*[httpx.Response(status, json=_envelope("service_unavailable"))] * 4)
    client = GreyClient("http://grey", "k", retry=FAST, transport=transport)
    with pytest.raises(GreyApiError) as failed:
        client.get_cluster_health()
    assert failed.value.status == status
    assert len(seen) == 4


def test_other_4xx_raise_at_once_with_the_code() -> None:
    transport, seen = _sequence(httpx.Response(404, json=_envelope("task_not_found")))
    client = GreyClient("http://grey", "k", retry=FAST, transport=transport)
    with pytest.raises(GreyApiError) as failed:
        client.get_task("task_x")
    assert failed.value.code == "task_not_found" and failed.value.details == {"x": 1}
    assert len(seen) == 1
    assert seen[0].url.path == "/v1/tasks/task_x"
    assert seen[0].headers["authorization"] == "Bearer k"


def test_query_parameters_repeat_for_lists() -> None:
    transport, seen = _sequence(httpx.Response(200, json={"tasks": [], "total": 0, "total_exact": True, "has_more": False}))
    client = GreyClient("http://grey", "k", transport=transport)
    page = client.list_tasks(status="pending,running", label=["a=1", "b=2"], limit=5)
    assert page.total == 0
    assert seen[0].url.params.get_list("label") == ["a=1", "b=2"]
    assert seen[0].url.params["limit"] == "5"


async def test_async_client_talks_to_the_real_gateway(platform, key) -> None:
    transport = httpx.ASGITransport(app=platform.rest)
    async with AsyncGreyClient("http://grey", key, transport=transport) as client:
        submitted = await client.submit_task(
            models.SubmitTaskRequest(type="stateless", payload=models.TaskPayload(function="echo"))
        )
        task = await client.get_task(submitted.task_id)
        assert task.status == "pending"
        with pytest.raises(GreyApiError) as missing:
            await client.get_task("task_missing")
        assert missing.value.code == "task_not_found"


_SSE = (
    b'event: status\ndata: {"task_id": "task_1", "status": "running"}\n\n'
    b'event: done\ndata: {"task_id": "task_1"}\n\n'
)


_EVENTS = [("status", {"task_id": "task_1", "status": "running"}), ("done", {"task_id": "task_1"})]


def _event_stream() -> httpx.Response:
    return httpx.Response(200, content=_SSE, headers={"content-type": "text/event-stream"})


def test_stream_parses_server_sent_events() -> None:
    transport, seen = _sequence(_event_stream())
    assert list(GreyClient("http://grey", "k", transport=transport).stream_task("task_1")) == _EVENTS
    assert seen[0].url.path == "/v1/tasks/task_1/stream"
    assert seen[0].headers["accept"] == "text/event-stream"


async def test_async_stream_parses_server_sent_events() -> None:
    transport, seen = _sequence(_event_stream())
    async with AsyncGreyClient("http://grey", "k", transport=transport) as client:
        assert [event async for event in client.stream_task_events("task_1")] == _EVENTS
    assert seen[0].url.path == "/v1/tasks/task_1/events"


def test_a_stream_error_raises_with_the_code() -> None:
    transport, _ = _sequence(httpx.Response(404, json=_envelope("task_not_found")))
    with pytest.raises(GreyApiError) as failed:
        list(GreyClient("http://grey", "k", transport=transport).stream_task("task_x"))
    assert failed.value.code == "task_not_found"


# x-grey-envelope: the client returns `data` and raises the envelope's error ----------------


def test_an_envelope_clients_methods_return_data_and_raise_its_errors() -> None:
    from generated.gswarm_host import models as gswarm
    from generated.gswarm_host.client import GswarmHostClient

    queue = {
        "pending": 1,
        "running": 0,
        "completed": 2,
        "config": {"max_concurrent_tasks": 4, "priority_levels": ["critical"], "resource_tracking": True},
    }

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/queue":
            return httpx.Response(200, json={"success": True, "data": queue, "error": None})
        error = {
            "code": "NOT_FOUND",
            "message": "Task task_x does not exist",
            "details": {"task_id": "task_x"},
        }
        return httpx.Response(404, json={"success": False, "data": None, "error": error})

    with GswarmHostClient("http://gswarm.test", "key", transport=httpx.MockTransport(answer)) as client:
        status = client.get_queue_status()
        assert isinstance(status, gswarm.QueueStatus) and status.completed == 2
        with pytest.raises(GreyApiError) as missing:
            client.get_queue_task("task_x")
    assert (missing.value.status, missing.value.code) == (404, "NOT_FOUND")
    assert missing.value.details == {"task_id": "task_x"}


def test_an_envelope_saying_failure_raises_even_under_a_success_status() -> None:
    from generated.gswarm_host.client import GswarmHostClient

    def answer(request: httpx.Request) -> httpx.Response:
        error = {"code": "TASK_FAILED", "message": "it failed", "details": {}}
        return httpx.Response(200, json={"success": False, "data": None, "error": error})

    with (
        GswarmHostClient("http://gswarm.test", transport=httpx.MockTransport(answer)) as client,
        pytest.raises(GreyApiError) as failed,
    ):
        client.get_queue_status()
    assert failed.value.code == "TASK_FAILED"
