"""OpenMCP Chain's TaskService on Grey's runtime, over REST and gRPC: submit a task function or
a named pipeline, read it until it ends, stream its events; workspaces are tenants."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from grpclib.const import Status

from runtime.gateway.app import Platform
from runtime.services import Services
from tests.handlers.openmcp.conftest import OpenMcp
from tests.support.platform import until_streaming, wait_for_task

TEXT = "to be or not to be"
REPORT_INPUTS: dict[str, Any] = {
    "inputs": [
        {"input_id": "notes", "type": "text", "data": "Sales rose in May. Sales fell in June!"},
        {"input_id": "figures", "type": "json", "data": '{"sales": [{"amount": 120}, {"amount": 80}]}'},
    ]
}


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _collapsed(events: list[dict[str, Any]]) -> list[str]:
    statuses: list[str] = []
    for event in events:
        if not statuses or statuses[-1] != event["status"]:
            statuses.append(event["status"])
    return statuses


async def test_submit_answers_pending_then_the_task_succeeds_with_its_result(
    openmcp: OpenMcp, token: str, workers: Platform, services: Services
) -> None:
    submitted = await openmcp.submit(
        token, type="wordcount", payload={"text": TEXT}, metadata={"source": "unit"}
    )
    assert submitted.ok, submitted
    assert submitted.status == (201 if openmcp.name == "rest" else 0)
    assert set(submitted.data) == {"task_id", "status", "submitted_at"}
    assert submitted.data["status"] == "PENDING"
    task_id = submitted.data["task_id"]
    assert task_id.startswith("task_")
    await wait_for_task(services, task_id)
    got = await openmcp.get(token, task_id)
    assert got.data["status"] == "SUCCEEDED"
    assert got.data["result"]["words"] == 6 and got.data["result"]["unique"] == 4
    assert _instant(got.data["submitted_at"]) == _instant(submitted.data["submitted_at"])
    assert _instant(got.data["updated_at"]) >= _instant(got.data["submitted_at"])
    assert not got.data.get("error")


async def test_a_failing_function_ends_failed_with_its_error_as_a_string(
    openmcp: OpenMcp, token: str, workers: Platform, services: Services
) -> None:
    task_id = (await openmcp.submit(token, type="fail", payload={"message": "disk on fire"})).data["task_id"]
    await wait_for_task(services, task_id)
    got = await openmcp.get(token, task_id)
    assert got.data["status"] == "FAILED"
    assert isinstance(got.data["error"], str) and "disk on fire" in got.data["error"]
    assert not got.data.get("result")


async def test_a_workspace_other_than_the_tokens_is_permission_denied_and_nothing_is_stored(
    openmcp: OpenMcp, token: str, api_rest: Callable[[str], httpx.AsyncClient], key: str
) -> None:
    answer = await openmcp.submit(token, workspace_id="globex", type="echo", payload={"x": 1})
    assert answer.code == "PERMISSION_DENIED"
    assert answer.status == (403 if openmcp.name == "rest" else Status.PERMISSION_DENIED.value)
    own = await openmcp.submit(token, workspace_id="acme", type="echo", payload={"x": 1})
    assert own.ok
    listed = await api_rest("grey").get("/v1/tasks", headers={"X-API-Key": key})
    assert [task["task_id"] for task in listed.json()["tasks"]] == [own.data["task_id"]]


async def test_an_unknown_task_is_task_not_found(openmcp: OpenMcp, token: str) -> None:
    for answer in (
        await openmcp.get(token, "task_missing"),
        (await openmcp.events(token, "task_missing"))[0],
    ):
        assert answer.code == "TASK_NOT_FOUND"
        assert answer.status == (404 if openmcp.name == "rest" else Status.NOT_FOUND.value)


async def test_an_unknown_type_is_invalid_argument_never_stored(
    openmcp: OpenMcp, token: str, services: Services
) -> None:
    answer = await openmcp.submit(token, type="no_such_function", payload={})
    assert answer.code == "INVALID_ARGUMENT"
    assert answer.status == (400 if openmcp.name == "rest" else Status.INVALID_ARGUMENT.value)
    assert services.store.tasks.list("acme").total == 0


async def test_another_workspaces_task_is_task_not_found_as_if_absent(
    openmcp: OpenMcp, token: str, other_token: str
) -> None:
    task_id = (await openmcp.submit(token, type="echo", payload={"secret": "acme's"})).data["task_id"]
    assert (await openmcp.get(other_token, task_id)).code == "TASK_NOT_FOUND"
    assert (await openmcp.events(other_token, task_id))[0].code == "TASK_NOT_FOUND"
    assert (await openmcp.get(token, task_id)).data["status"] == "PENDING"


async def test_the_event_stream_follows_the_task_to_succeeded_with_times_and_context(
    openmcp: OpenMcp, token: str, every_api: Platform
) -> None:
    task_id = (await openmcp.submit(token, type="sleep", payload={"seconds": 0.4})).data["task_id"]
    stream = asyncio.ensure_future(openmcp.events(token, task_id))
    await until_streaming(every_api.services)  # subscribed while the task is still pending
    every_api.start_runtime(worker_threads=2)
    answer, events = await asyncio.wait_for(stream, 15)
    assert answer.ok, answer
    assert _collapsed(events) == ["PENDING", "RUNNING", "SUCCEEDED"]
    assert all(event["task_id"] == task_id for event in events)
    times = [_instant(event["occurred_at"]) for event in events]
    assert times == sorted(times)
    assert [event["context"]["grey_status"] for event in events][-1] == "completed"
    progress = [event["context"]["progress"] for event in events]
    assert progress == sorted(progress) and progress[-1] == 100
    assert any(event["context"].get("message") for event in events if event["status"] == "RUNNING")
    again, finished = await openmcp.events(token, task_id)  # a finished task: its state, then the end
    assert again.ok and [event["status"] for event in finished] == ["SUCCEEDED"]


async def test_metadata_priority_sets_greys_priority_and_metadata_becomes_its_labels(
    openmcp: OpenMcp, token: str, api_rest: Callable[[str], httpx.AsyncClient], key: str
) -> None:
    grey = api_rest("grey")
    expected = {"high": "high", "critical": "critical", "low": "low", "urgent": "normal"}
    for given, priority in expected.items():
        metadata = {"priority": given, "team": "search"}
        task_id = (await openmcp.submit(token, type="echo", metadata=metadata)).data["task_id"]
        task = (await grey.get(f"/v1/tasks/{task_id}", headers={"X-API-Key": key})).json()
        assert task["priority"] == priority, given
        assert task["labels"] == metadata
        assert task["type"] == "stateless" and task["payload"]["function"] == "echo"


async def test_a_named_pipeline_as_type_runs_as_a_pipeline_of_agents(
    openmcp: OpenMcp,
    token: str,
    workers: Platform,
    services: Services,
    api_rest: Callable[[str], httpx.AsyncClient],
    key: str,
) -> None:
    task_id = (await openmcp.submit(token, type="report_generation", payload=REPORT_INPUTS)).data["task_id"]
    await wait_for_task(services, task_id)
    got = await openmcp.get(token, task_id)
    assert got.data["status"] == "SUCCEEDED", got
    result = got.data["result"]
    assert result["pipeline"] == "report_generation" and result["mode"] == "sequential"
    assert result["output"]["type"] == "json_report"
    assert [step["function"] for step in result["steps"]] == ["data_ingest", "data_analysis", "synthesis"]
    grey = (await api_rest("grey").get(f"/v1/tasks/{task_id}", headers={"X-API-Key": key})).json()
    assert grey["type"] == "pipeline" and grey["payload"]["pipeline"] == "report_generation"
