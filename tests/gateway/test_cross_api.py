"""One runtime beneath three contracts: a task submitted through any API (Grey Distributed,
OpenMCP Chain, the Orchestrator) is the same task through the other two, its status in each
API's words (the tables of handlers/openmcp/views.py and handlers/orchestrator/views.py),
listed by Grey, found by the Orchestrator's client task_id everywhere, and invisible to any
other tenant through every API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from runtime.gateway.app import Platform
from runtime.services import Services
from tests.support.platform import make_key, parse_sse, wait_for_task

# The documented tables, written out: Grey status → OpenMCP Chain / the Orchestrator.
OPENMCP_STATUS = {
    "pending": "PENDING",
    "running": "RUNNING",
    "completed": "SUCCEEDED",
    "failed": "FAILED",
    "cancelled": "FAILED",
    "timeout": "FAILED",
}
ORCHESTRATOR_STATUS = {
    "pending": "queued",
    "running": "running",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "timeout": "timeout",
}
ORCHESTRATOR_ERROR = {"failed": "EXECUTION_FAILED", "cancelled": "CANCELLED", "timeout": "TIMEOUT"}

TEXT = "the cat sat on the mat"
INPUTS = [
    {"input_id": "notes", "type": "text", "data": "Sales rose in May. Sales fell in June!"},
    {"input_id": "figures", "type": "json", "data": '{"sales": [120, 80]}'},
]


@dataclass
class Apis:
    """Tenant `acme` calling each API's REST side with its key."""

    grey: httpx.AsyncClient
    openmcp: httpx.AsyncClient
    orchestrator: httpx.AsyncClient
    headers: dict[str, str]

    async def submit(self, origin: str) -> str:
        """A task through `origin`; the name that API gives it back."""
        if origin == "grey":
            body: dict[str, Any] = {
                "type": "stateless",
                "payload": {"function": "wordcount", "data": {"text": TEXT}},
                "labels": {"via": "grey"},
            }
            response = await self.grey.post("/v1/tasks", json=body, headers=self.headers)
        elif origin == "openmcp":
            body = {"type": "wordcount", "payload": {"text": TEXT}, "metadata": {"via": "openmcp"}}
            response = await self.openmcp.post("/v1/tasks", json=body, headers=self.headers)
        else:
            body = {
                "task_id": "client-chosen-1",
                "task_type": "report_generation",
                "inputs": INPUTS,
                "metadata": {"via": "orchestrator"},
            }
            response = await self.orchestrator.post("/api/v1/tasks", json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        name: str = response.json()["task_id"]
        return name

    async def views(self, name: str, headers: dict[str, str] | None = None) -> dict[str, httpx.Response]:
        """The task `name` as each API answers it."""
        headers = headers or self.headers
        return {
            "grey": await self.grey.get(f"/v1/tasks/{name}", headers=headers),
            "openmcp": await self.openmcp.get(f"/v1/tasks/{name}", headers=headers),
            "orchestrator": await self.orchestrator.get(f"/api/v1/tasks/{name}", headers=headers),
        }

    async def read(self, name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        views = await self.views(name)
        for api, response in views.items():
            assert response.status_code == 200, (api, response.text)
        return views["grey"].json(), views["openmcp"].json(), views["orchestrator"].json()


@pytest.fixture
def apis(api_rest: Callable[[str], httpx.AsyncClient], key: str) -> Apis:
    return Apis(api_rest("grey"), api_rest("openmcp"), api_rest("orchestrator"), {"X-API-Key": key})


def _assert_same_task(grey: dict[str, Any], openmcp: dict[str, Any], orchestrator: dict[str, Any]) -> None:
    """One task through three contracts: its id, status and error in each API's words."""
    assert openmcp["task_id"] == grey["task_id"]
    assert orchestrator["task_id"] == (grey.get("idempotency_key") or grey["task_id"])
    status = grey["status"]
    assert openmcp["status"] == OPENMCP_STATUS[status]
    assert orchestrator["status"] == ORCHESTRATOR_STATUS[status]
    if status in ORCHESTRATOR_ERROR:
        assert orchestrator["error"]["code"] == ORCHESTRATOR_ERROR[status]
        assert isinstance(openmcp["error"], str) and openmcp["error"]
    else:
        assert "error" not in orchestrator and not openmcp.get("error")


@pytest.mark.parametrize("origin", ["grey", "openmcp", "orchestrator"])
async def test_a_task_submitted_through_one_api_is_the_same_task_through_the_other_two(
    origin: str, apis: Apis, workers: Platform, services: Services
) -> None:
    name = await apis.submit(origin)
    await wait_for_task(services, name)
    grey, openmcp, orchestrator = await apis.read(name)
    _assert_same_task(grey, openmcp, orchestrator)
    assert grey["status"] == "completed"
    assert grey["labels"] == {"via": origin}
    # The result, as each API shapes it.
    assert openmcp["result"] == grey["result"]
    if origin == "orchestrator":
        assert grey["type"] == "pipeline" and grey["payload"]["pipeline"] == "report_generation"
        assert orchestrator["output"] == grey["result"]["output"]
        assert orchestrator["output"]["type"] == "json_report"
        steps = grey["result"]["steps"]
        assert [e["agent_id"] for e in orchestrator["agent_executions"]] == [s["agent_id"] for s in steps]
    else:
        assert grey["type"] == "stateless" and grey["payload"]["function"] == "wordcount"
        assert grey["result"]["words"] == 6
        assert orchestrator["output"] == {"type": "json", "data": grey["result"]}
        (execution,) = orchestrator["agent_executions"]
        assert execution["agent_type"] == "wordcount" and execution["status"] == "completed"
    assert orchestrator["metrics"]["total_duration_ms"] == grey["duration_ms"]
    listed = await apis.grey.get("/v1/tasks", headers=apis.headers)
    assert [task["task_id"] for task in listed.json()["tasks"]] == [grey["task_id"]]


async def test_the_orchestrators_client_task_id_names_the_task_in_grey_and_openmcp(
    apis: Apis, every_api: Platform
) -> None:
    name = await apis.submit("orchestrator")
    assert name == "client-chosen-1"
    grey, openmcp, orchestrator = await apis.read(name)
    assert grey["idempotency_key"] == name and grey["task_id"].startswith("task_")
    assert openmcp["task_id"] == grey["task_id"] and openmcp["status"] == "PENDING"
    # Grey's own id finds it through the Orchestrator too, which still names it by the client's.
    by_id = await apis.orchestrator.get(f"/api/v1/tasks/{grey['task_id']}", headers=apis.headers)
    assert by_id.json()["task_id"] == name
    # Cancelled through Grey by the client's name: every API reads it cancelled.
    cancelled = await apis.grey.delete(f"/v1/tasks/{name}", headers=apis.headers)
    assert cancelled.status_code == 200, cancelled.text
    grey, openmcp, orchestrator = await apis.read(name)
    _assert_same_task(grey, openmcp, orchestrator)
    assert grey["status"] == "cancelled" and openmcp["error"].startswith("cancelled")


async def test_every_grey_status_reads_per_the_tables_of_openmcp_and_the_orchestrator(
    apis: Apis, every_api: Platform, services: Services
) -> None:
    async def submit(payload: dict[str, Any], **extra: Any) -> str:
        body = {"type": "stateless", "payload": payload, **extra}
        response = await apis.grey.post("/v1/tasks", json=body, headers=apis.headers)
        assert response.status_code == 201, response.text
        task_id: str = response.json()["task_id"]
        return task_id

    seen: dict[str, str] = {}

    async def check(task_id: str) -> None:
        grey, openmcp, orchestrator = await apis.read(task_id)
        _assert_same_task(grey, openmcp, orchestrator)
        seen[grey["status"]] = task_id

    pending = await submit({"function": "echo", "data": 1})
    await check(pending)
    cancelled = await submit({"function": "echo", "data": 2})
    assert (await apis.grey.delete(f"/v1/tasks/{cancelled}", headers=apis.headers)).status_code == 200
    await check(cancelled)
    every_api.start_runtime(worker_threads=4)
    running = await submit({"function": "sleep", "data": {"seconds": 10}})
    failed = await submit({"function": "fail", "data": {"message": "on purpose"}})
    timed_out = await submit({"function": "sleep", "data": {"seconds": 10}}, timeout_seconds=1)
    await wait_for_task(services, running, ("running",))
    await check(running)
    for task_id in (pending, failed, timed_out):
        await wait_for_task(services, task_id)
        await check(task_id)
    assert set(seen) == set(OPENMCP_STATUS)
    _, openmcp, _ = await apis.read(timed_out)
    assert openmcp["error"].startswith("timed out")
    await apis.grey.delete(f"/v1/tasks/{running}", headers=apis.headers)


async def test_every_apis_stream_of_a_finished_task_ends_in_its_own_word_for_the_status(
    apis: Apis, workers: Platform, services: Services
) -> None:
    name = await apis.submit("orchestrator")
    await wait_for_task(services, name)
    streams = {
        "grey": (apis.grey, f"/v1/tasks/{name}/events", "status", "completed"),
        "openmcp": (apis.openmcp, f"/v1/tasks/{name}/events", "status", "SUCCEEDED"),
        "orchestrator": (apis.orchestrator, f"/api/v1/tasks/{name}/updates", "status", "completed"),
    }
    for api, (client, path, field, final) in streams.items():
        response = await asyncio.wait_for(client.get(path, headers=apis.headers), 10)
        assert response.status_code == 200, (api, response.text)
        events = parse_sse(response.text)
        assert events[-1][0] == "done", api
        assert events[-2][1][field] == final, api


async def test_another_tenant_finds_the_task_through_no_api(
    apis: Apis, every_api: Platform, services: Services
) -> None:
    name = await apis.submit("orchestrator")
    grey_id = (await apis.views(name))["grey"].json()["task_id"]
    other = {"X-API-Key": make_key(services, "globex")}
    for candidate in (name, grey_id):
        for api, response in (await apis.views(candidate, other)).items():
            assert response.status_code == 404, (api, candidate)
            assert response.json()["error"]["code"] in ("task_not_found", "TASK_NOT_FOUND"), api
    listed = await apis.grey.get("/v1/tasks", headers=other)
    assert listed.json()["total"] == 0
