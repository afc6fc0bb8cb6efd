"""The Orchestrator's task operations over REST on Grey's runtime: named pipelines of agents in
each execution mode, client-chosen task ids, cancel, timeout and the update stream."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from runtime.gateway.app import Platform
from runtime.services import Services
from tests.handlers.orchestrator.conftest import REPORT_INPUTS, SlowEndpoint
from tests.support.platform import make_key, parse_sse, until_streaming, wait_for_task

AGENTS = ["data_ingest", "data_analysis", "synthesis"]


async def _status(client: httpx.AsyncClient, task_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(f"/api/v1/tasks/{task_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _submit(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/api/v1/tasks", json=body, headers=headers)


@pytest.mark.parametrize("mode", ["sequential", "parallel", "hybrid"])
async def test_report_generation_completes_with_three_agents_a_json_report_and_metrics(
    mode: str,
    orchestrator: httpx.AsyncClient,
    headers: dict[str, str],
    workers: Platform,
    services: Services,
) -> None:
    response = await _submit(
        orchestrator,
        headers,
        task_id=f"report-{mode}",
        task_type="report_generation",
        inputs=REPORT_INPUTS,
        execution_mode=mode,
        metadata={"report_title": "Q2 sales"},
        priority=7,
    )
    assert response.status_code == 201, response.text
    assert response.json()["task_id"] == f"report-{mode}"
    assert response.json()["status"] == "queued" and response.json()["message"]
    await wait_for_task(services, f"report-{mode}")
    status = await _status(orchestrator, f"report-{mode}", headers)
    assert status["status"] == "completed", status
    executions = status["agent_executions"]
    assert [execution["agent_type"] for execution in executions] == AGENTS
    assert [execution["agent_id"] for execution in executions] == [
        "agent-data-ingest-1",
        "agent-data-analysis-2",
        "agent-synthesis-3",
    ]
    for execution in executions:
        assert execution["status"] == "completed"
        assert execution["execution_time_ms"] >= 0 and execution["retry_count"] == 0
    assert status["output"]["type"] == "json_report"
    if mode == "sequential":  # each agent's output feeds the next: the report covers the inputs
        report = status["output"]["data"]
        assert report["title"] == "Q2 sales" and "sales: mean 100" in report["summary"]
    metrics = status["metrics"]
    assert metrics["agents_used"] == 3 and metrics["retry_count"] == 0
    assert metrics["total_duration_ms"] >= metrics["execution_time_ms"] >= 0
    assert metrics["queue_time_ms"] >= 0
    assert "error" not in status
    record = services.store.tasks.find("acme", f"report-{mode}")
    assert record is not None and record.payload["mode"] == mode and record.priority == "high"


async def test_a_task_id_reused_by_the_same_tenant_is_task_already_exists(
    orchestrator: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    first = await _submit(
        orchestrator, headers, task_id="dup-1", task_type="data_analysis", inputs=REPORT_INPUTS
    )
    assert first.status_code == 201
    again = await _submit(orchestrator, headers, task_id="dup-1", task_type="report_generation")
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "TASK_ALREADY_EXISTS" and error["details"]["task_id"] == "dup-1"
    assert services.store.tasks.list("acme").total == 1
    record = services.store.tasks.find("acme", "dup-1")
    assert record is not None and record.payload["pipeline"] == "data_analysis"


async def test_a_task_id_reused_by_another_tenant_is_its_own_task_and_leaks_nothing(
    orchestrator: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    other = {"X-API-Key": make_key(services, "globex")}
    mine = await _submit(
        orchestrator, headers, task_id="shared-1", task_type="data_analysis", inputs=REPORT_INPUTS
    )
    theirs = await _submit(orchestrator, other, task_id="shared-1", task_type="report_generation")
    assert mine.status_code == theirs.status_code == 201
    assert theirs.json()["task_id"] == "shared-1"
    acme, globex = (
        services.store.tasks.find("acme", "shared-1"),
        services.store.tasks.find("globex", "shared-1"),
    )
    assert acme is not None and globex is not None and acme.task_id != globex.task_id
    assert acme.payload["pipeline"] == "data_analysis" and globex.payload["pipeline"] == "report_generation"
    cancelled = await orchestrator.delete("/api/v1/tasks/shared-1", headers=other)
    assert cancelled.json()["success"] is True
    assert (await _status(orchestrator, "shared-1", headers))["status"] == "queued"
    assert (await _status(orchestrator, "shared-1", other))["status"] == "cancelled"


async def test_an_unknown_task_type_is_a_validation_error_never_stored(
    orchestrator: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    response = await _submit(orchestrator, headers, task_id="nope-1", task_type="summon_dragons")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and error["details"]["field"] == "task_type"
    assert "report_generation" in error["message"]
    invalid_mode = await _submit(
        orchestrator, headers, task_type="report_generation", execution_mode="chaotic"
    )
    assert invalid_mode.status_code == 400 and invalid_mode.json()["error"]["code"] == "VALIDATION_ERROR"
    assert services.store.tasks.list("acme").total == 0


async def test_real_time_monitoring_is_agent_unavailable_never_stored(
    orchestrator: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    response = await _submit(orchestrator, headers, task_id="video-1", task_type="real_time_monitoring")
    assert response.status_code == 409  # runtime/api/errors.py: unschedulable
    error = response.json()["error"]
    assert error["code"] == "AGENT_UNAVAILABLE"
    assert error["details"]["pipeline"] == "real_time_monitoring" and error["details"]["reason"]
    assert services.store.tasks.list("acme").total == 0


async def test_cancel_of_a_queued_task_succeeds_and_it_reads_cancelled_with_code_cancelled(
    orchestrator: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    await _submit(
        orchestrator, headers, task_id="later-1", task_type="report_generation", inputs=REPORT_INPUTS
    )
    assert (await _status(orchestrator, "later-1", headers))["status"] == "queued"
    response = await orchestrator.request(
        "DELETE", "/api/v1/tasks/later-1", json={"reason": "changed my mind"}, headers=headers
    )
    assert response.status_code == 200
    assert response.json()["success"] is True and response.json()["message"]
    status = await _status(orchestrator, "later-1", headers)
    assert status["status"] == "cancelled"
    assert status["error"]["code"] == "CANCELLED" and "changed my mind" in status["error"]["message"]
    assert "output" not in status
    again = await orchestrator.delete("/api/v1/tasks/later-1", headers=headers)
    assert again.status_code == 200 and again.json()["success"] is False


async def test_cancel_of_a_running_task_stops_it_as_cancelled(
    orchestrator: httpx.AsyncClient,
    headers: dict[str, str],
    slow_endpoint: SlowEndpoint,
    workers: Platform,
    services: Services,
) -> None:
    await _submit(
        orchestrator, headers, task_id="busy-1", task_type="api_call", inputs=slow_endpoint.inputs()
    )
    await wait_for_task(services, "busy-1", ("running",))
    assert (await _status(orchestrator, "busy-1", headers))["status"] == "running"
    response = await orchestrator.delete("/api/v1/tasks/busy-1", headers=headers)
    assert response.json()["success"] is True
    status = await _status(orchestrator, "busy-1", headers)
    assert status["status"] == "cancelled" and status["error"]["code"] == "CANCELLED"
    slow_endpoint.release.set()  # the agent's call now returns; the task stays cancelled
    await asyncio.sleep(0.3)
    assert (await _status(orchestrator, "busy-1", headers))["status"] == "cancelled"


async def test_cancel_of_a_finished_task_is_no_success_and_changes_nothing(
    orchestrator: httpx.AsyncClient, headers: dict[str, str], workers: Platform, services: Services
) -> None:
    await _submit(orchestrator, headers, task_id="done-1", task_type="data_analysis", inputs=REPORT_INPUTS)
    await wait_for_task(services, "done-1")
    response = await orchestrator.delete("/api/v1/tasks/done-1", headers=headers)
    assert response.status_code == 200
    assert response.json()["success"] is False and "completed" in response.json()["message"]
    assert (await _status(orchestrator, "done-1", headers))["status"] == "completed"


async def test_cancel_or_status_of_an_unknown_task_is_task_not_found(
    orchestrator: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for response in (
        await orchestrator.delete("/api/v1/tasks/ghost-1", headers=headers),
        await orchestrator.get("/api/v1/tasks/ghost-1", headers=headers),
        await orchestrator.get("/api/v1/tasks/ghost-1/updates", headers=headers),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "TASK_NOT_FOUND"


async def test_a_small_timeout_on_a_slow_agent_ends_the_task_as_timeout(
    orchestrator: httpx.AsyncClient,
    headers: dict[str, str],
    slow_endpoint: SlowEndpoint,
    workers: Platform,
    services: Services,
) -> None:
    await _submit(
        orchestrator,
        headers,
        task_id="slow-1",
        task_type="api_call",
        inputs=slow_endpoint.inputs(),
        timeout_ms=1000,
    )
    await wait_for_task(services, "slow-1", timeout=10)
    status = await _status(orchestrator, "slow-1", headers)
    assert status["status"] == "timeout", status
    assert status["error"]["code"] == "TIMEOUT" and "1 s" in status["error"]["message"]
    assert slow_endpoint.calls >= 1


async def test_the_update_stream_names_each_agent_with_progress_and_ends_completed(
    orchestrator: httpx.AsyncClient, headers: dict[str, str], every_api: Platform
) -> None:
    await _submit(
        orchestrator, headers, task_id="watch-1", task_type="report_generation", inputs=REPORT_INPUTS
    )
    stream = asyncio.ensure_future(orchestrator.get("/api/v1/tasks/watch-1/updates", headers=headers))
    await until_streaming(every_api.services)  # subscribed while the task is still pending
    every_api.start_runtime(worker_threads=2)
    response = await asyncio.wait_for(stream, 15)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert events[-1] == ("done", {})
    updates = [data for name, data in events[:-1] if name == "status"]
    assert updates[0]["status"] == "queued" and updates[-1]["status"] == "completed"
    assert all(update["task_id"] == "watch-1" and update["timestamp_ms"] > 0 for update in updates)
    agents = [update["agent_id"] for update in updates if update.get("agent_id")]
    assert agents == ["agent-data-ingest-1", "agent-data-analysis-2", "agent-synthesis-3"]
    progress = [update["progress_percent"] for update in updates]
    assert progress == sorted(progress) and progress[-1] == 100
    assert {33, 66} <= set(progress)
