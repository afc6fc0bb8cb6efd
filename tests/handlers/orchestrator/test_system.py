"""The Orchestrator's `/health` and `/metrics`: public, and counting the tasks this API ran."""

from __future__ import annotations

import asyncio
import re
import statistics
import time

import httpx
import pytest

from runtime.execution.metrics import TASK_METRICS
from runtime.gateway.app import Platform
from runtime.services import Services
from tests.handlers.orchestrator.conftest import REPORT_INPUTS
from tests.support.platform import wait_for_task


def _sample(text: str, name: str, labels: str) -> float:
    """The value of `name{labels}` in a Prometheus text exposition (0 when absent)."""
    match = re.search(rf"^{re.escape(name)}{{{re.escape(labels)}}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _ignore(api: str, milliseconds: int) -> None:
    pass


async def test_health_is_public_and_counts_the_active_tasks(
    orchestrator: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    for n in range(2):
        submitted = await orchestrator.post(
            "/api/v1/tasks", json={"task_id": f"h-{n}", "task_type": "data_analysis"}, headers=headers
        )
        assert submitted.status_code == 201
    response = await orchestrator.get("/health")
    assert response.status_code == 200
    health = response.json()
    assert health["healthy"] is True and health["version"] == services.version
    assert health["uptime_seconds"] >= 0
    assert health["stats"]["active_tasks"] == 2  # pending, no worker started


async def test_metrics_count_the_tasks_this_api_submitted_and_completed_and_their_median_time(
    orchestrator: httpx.AsyncClient,
    headers: dict[str, str],
    workers: Platform,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Task outcomes are counted per process (runtime/execution/metrics.py): the completed
    # counter is read as a difference, and the execution-time window starts empty here.
    times = TASK_METRICS.execution_times
    monkeypatch.setattr(times, "_recent", {})
    monkeypatch.setattr(times, "_count", {})
    monkeypatch.setattr(times, "_sum", {})
    before = (await orchestrator.get("/metrics")).text
    completed_before = _sample(before, "tasks_completed_total", 'api="orchestrator"')
    for n in range(3):
        body = {"task_id": f"m-{n}", "task_type": "report_generation", "inputs": REPORT_INPUTS}
        assert (await orchestrator.post("/api/v1/tasks", json=body, headers=headers)).status_code == 201
    refused = {"task_id": "m-0", "task_type": "report_generation"}  # a duplicate is not submitted
    assert (await orchestrator.post("/api/v1/tasks", json=refused, headers=headers)).status_code == 409
    execution_ms = []
    for n in range(3):
        await wait_for_task(services, f"m-{n}")
        status = (await orchestrator.get(f"/api/v1/tasks/m-{n}", headers=headers)).json()
        assert status["status"] == "completed"
        execution_ms.append(status["metrics"]["execution_time_ms"])

    # The executor counts an outcome just after the store records it: scrape until all three are.
    deadline = time.monotonic() + 5
    while True:
        response = await orchestrator.get("/metrics")
        counted = _sample(response.text, "task_execution_time_ms_count", 'api="orchestrator"')
        if counted >= 3 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert _sample(text, "tasks_submitted_total", 'api="orchestrator"') == 3
    assert _sample(text, "tasks_completed_total", 'api="orchestrator"') - completed_before == 3
    assert _sample(text, "task_execution_time_ms_count", 'api="orchestrator"') == 3
    assert _sample(text, "task_execution_time_ms_sum", 'api="orchestrator"') == sum(execution_ms)
    median = statistics.median(execution_ms)
    assert _sample(text, "task_execution_time_ms", 'api="orchestrator",quantile="0.5"') == median
    assert re.search(r'^task_execution_time_ms\{api="orchestrator",quantile="0.99"\} ', text, re.MULTILINE)
    assert _sample(text, "tasks_submitted_total", 'api="openmcp"') == 0
    health = (await orchestrator.get("/health")).json()
    assert health["stats"]["metrics"]["median_execution_time_ms"] == median
    # The estimate a submit answers is that median (the window frozen: the new task may end
    # before its answer is made).
    monkeypatch.setattr(times, "observe", _ignore)
    estimate = await orchestrator.post(
        "/api/v1/tasks", json={"task_id": "m-3", "task_type": "data_analysis"}, headers=headers
    )
    assert estimate.json()["estimated_completion_ms"] == median
