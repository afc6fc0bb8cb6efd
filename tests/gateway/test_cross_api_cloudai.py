"""CloudAI on the one runtime: its container tasks are Grey tasks (listed, read and cancelled
through Grey Distributed's REST and gRPC, valid against Grey's schema), its workers are
Grey's worker nodes, and what Grey does to a task CloudAI reads in its own words."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from grpclib.client import Channel

from runtime.services import Services
from tests.support.cloudai import SUBMIT, seed_task, seed_worker
from tests.support.transports import GrpcCaller


async def test_a_cloudai_task_is_a_grey_task_over_rest_and_grpc(
    api_rest: Callable[[str], httpx.AsyncClient],
    api_grpc: Callable[[str], Channel],
    services: Services,
    key: str,
) -> None:
    headers = {"X-API-Key": key}
    seed_worker(services)
    submitted = await api_rest("cloudai").post("/api/tasks", json=SUBMIT, headers=headers)
    assert submitted.status_code == 200, submitted.text
    task_id = submitted.json()["task_id"]

    grey = api_rest("grey")
    listed = await grey.get("/v1/tasks", params={"type": "container"}, headers=headers)
    assert listed.status_code == 200, listed.text
    assert [task["task_id"] for task in listed.json()["tasks"]] == [task_id]
    read = await grey.get(f"/v1/tasks/{task_id}", headers=headers)
    assert read.status_code == 200, read.text
    task = read.json()
    assert (task["type"], task["status"], task["pool"]) == ("container", "pending", "cpu")
    assert task["labels"] == {"user_id": "user-123"}
    assert task["payload"] == {"image": SUBMIT["docker_image"], "command": SUBMIT["command"]}
    assert task["resources"] == {"cpu": 1.0, "memory_gb": 2.0, "storage_gb": 5.0, "gpu": 0}

    grpc = GrpcCaller(api_grpc("grey"))
    got = await grpc("getTask", key, task_id=task_id)
    assert got.ok, got
    assert got.data["type"] == "container"
    assert got.data["resources"]["storage_gb"] == 5.0
    assert (await grpc("listTasks", key, limit=10)).ok


async def test_a_cloudai_task_cancelled_through_grey_reads_cancelled_in_cloudai(
    api_rest: Callable[[str], httpx.AsyncClient], services: Services, key: str
) -> None:
    headers = {"X-API-Key": key}
    task = seed_task(services)
    cancelled = await api_rest("grey").delete(f"/v1/tasks/{task.task_id}", headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    body = (await api_rest("cloudai").get(f"/api/tasks/{task.task_id}", headers=headers)).json()
    assert body["status"] == "cancelled"
    again = await api_rest("cloudai").post(f"/api/tasks/{task.task_id}/cancel", headers=headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "TASK_NOT_CANCELLABLE"


async def test_cloudais_workers_are_greys_worker_nodes(
    api_rest: Callable[[str], httpx.AsyncClient], services: Services, key: str
) -> None:
    headers = {"X-API-Key": key}
    seed_worker(services, "worker-1")
    workers = (await api_rest("cloudai").get("/api/workers", headers=headers)).json()["workers"]
    nodes = await api_rest("grey").get("/v1/cluster/nodes", headers=headers)
    assert nodes.status_code == 200, nodes.text
    grey_ids = {node["node_id"] for node in nodes.json()["nodes"]}
    assert [worker["worker_id"] for worker in workers] == ["worker-1"]
    assert "worker-1" in grey_ids
