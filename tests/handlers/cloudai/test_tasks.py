"""CloudAI's task operations: the reference's shapes, status words, errors and filters."""

from __future__ import annotations

from typing import Any

import httpx

from runtime.services import Services
from tests.handlers.cloudai.conftest import SUBMIT, headers_for, seed_task, seed_worker


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    return error


async def test_submit_stores_a_container_task_with_the_requests(
    cloudai: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    seed_worker(services)
    response = await cloudai.post("/api/tasks", json=SUBMIT, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "queued" and body["message"] == "Task submitted successfully"
    task = services.store.tasks.find("acme", body["task_id"])
    assert task is not None
    assert (task.type, task.api, task.pool) == ("container", "cloudai", "cpu")
    assert task.payload == {"image": SUBMIT["docker_image"], "command": SUBMIT["command"]}
    assert task.resources == {"cpu": 1.0, "memory_gb": 2.0, "storage_gb": 5.0, "gpu": 0}
    assert task.labels == {"user_id": "user-123"}


async def test_a_gpu_request_routes_to_the_gpu_pool(
    cloudai: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    seed_worker(services, "grey-worker-gpu", pool="gpu", gpus=2)
    response = await cloudai.post("/api/tasks", json={**SUBMIT, "req_gpu": 1.0}, headers=headers)
    assert response.status_code == 200, response.text
    task = services.store.tasks.find("acme", response.json()["task_id"])
    assert task is not None and task.pool == "gpu" and task.resources["gpu"] == 1


async def test_submit_without_a_container_worker_is_unschedulable_naming_why(
    cloudai: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    seed_worker(services, containers=False)
    error = assert_error(await cloudai.post("/api/tasks", json=SUBMIT, headers=headers), 409, "UNSCHEDULABLE")
    assert "containers" in error["message"] and "podman: not installed" in error["message"]
    assert services.store.tasks.list("acme").total == 0


async def test_submit_larger_than_every_worker_is_unschedulable(
    cloudai: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    seed_worker(services, cpu=2.0)
    body = {**SUBMIT, "req_cpu": 4.0}
    error = assert_error(await cloudai.post("/api/tasks", json=body, headers=headers), 409, "UNSCHEDULABLE")
    assert "cpu 4" in error["message"]


async def test_bad_requests_name_the_field(cloudai: httpx.AsyncClient, headers: dict[str, str]) -> None:
    cases = {
        "req_cpu": {**SUBMIT, "req_cpu": 0},
        "req_memory": {**SUBMIT, "req_memory": -1},
        "req_storage": {**SUBMIT, "req_storage": -0.5},
        "req_gpu": {**SUBMIT, "req_gpu": 0.5},
        "docker_image": {**SUBMIT, "docker_image": ""},
        "command": {**SUBMIT, "command": ""},
        "user_id": {**SUBMIT, "user_id": ""},
        "extra": {**SUBMIT, "extra": 1},
    }
    for field, body in cases.items():
        error = assert_error(
            await cloudai.post("/api/tasks", json=body, headers=headers), 400, "INVALID_REQUEST"
        )
        if field != "extra":
            assert field in (error["details"].get("field") or "") or field in error["message"], (field, error)
    missing = {k: v for k, v in SUBMIT.items() if k != "docker_image"}
    assert_error(await cloudai.post("/api/tasks", json=missing, headers=headers), 400, "INVALID_REQUEST")
    too_long = {**SUBMIT, "user_id": "u" * 129}
    assert_error(await cloudai.post("/api/tasks", json=too_long, headers=headers), 400, "INVALID_REQUEST")
    options = {**SUBMIT, "docker_image": "--privileged"}
    assert_error(await cloudai.post("/api/tasks", json=options, headers=headers), 400, "INVALID_REQUEST")
    nul = {**SUBMIT, "command": "echo \x00"}
    assert_error(await cloudai.post("/api/tasks", json=nul, headers=headers), 400, "INVALID_REQUEST")


async def test_get_task_has_every_reference_field(
    cloudai: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    task = seed_task(services, status="running", worker="worker-1")
    response = await cloudai.get(f"/api/tasks/{task.task_id}", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task_id"] == task.task_id
    assert body["status"] == "running" and body["worker_id"] == "worker-1"
    assert (body["user_id"], body["docker_image"], body["command"]) == ("user-123", "busybox", "echo hi")
    assert (body["req_cpu"], body["req_memory"], body["req_storage"], body["req_gpu"]) == (1.0, 2.0, 5.0, 0.0)
    assert body["created_at"] and body["started_at"]


async def test_statuses_are_cloudai_words(
    cloudai: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    expected = {
        "pending": "queued",
        "running": "running",
        "completed": "completed",
        "failed": "failed",
        "cancelled": "cancelled",
        "timeout": "failed",
    }
    for grey, word in expected.items():
        task = seed_task(services, status=grey)
        body = (await cloudai.get(f"/api/tasks/{task.task_id}", headers=headers)).json()
        assert body["status"] == word, (grey, body)
        if grey == "timeout":
            assert "timed out" in body["error"]


async def test_exit_code_and_output_are_retrievable(
    cloudai: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    result = {"exit_code": 3, "output": "boom\n", "duration_ms": 12}
    task = seed_task(services, status="failed", result=result)
    detail = (await cloudai.get(f"/api/tasks/{task.task_id}", headers=headers)).json()
    assert detail["exit_code"] == 3 and detail["status"] == "failed"
    logs = await cloudai.get(f"/api/tasks/{task.task_id}/logs", headers=headers)
    assert logs.status_code == 200, logs.text
    assert logs.json() == {
        "task_id": task.task_id,
        "status": "failed",
        "exit_code": 3,
        "output": "boom\n",
        "truncated": False,
    }


async def test_unknown_task_is_task_not_found(cloudai: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for path in ("/api/tasks/task_missing", "/api/tasks/task_missing/logs"):
        assert_error(await cloudai.get(path, headers=headers), 404, "TASK_NOT_FOUND")
    assert_error(await cloudai.post("/api/tasks/task_missing/cancel", headers=headers), 404, "TASK_NOT_FOUND")


async def test_a_grey_task_that_is_no_container_is_not_cloudais(
    cloudai: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    task = seed_task(services, type="stateless", resources={})
    assert_error(await cloudai.get(f"/api/tasks/{task.task_id}", headers=headers), 404, "TASK_NOT_FOUND")
    listed = (await cloudai.get("/api/tasks", headers=headers)).json()
    assert listed["total"] == 0 and listed["tasks"] == []


async def test_cancel_a_queued_task_then_409_once_ended(
    cloudai: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    task = seed_task(services)
    response = await cloudai.post(f"/api/tasks/{task.task_id}/cancel", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "task_id": task.task_id,
        "status": "cancelled",
        "message": "Task cancellation requested",
    }
    stored = services.store.tasks.find("acme", task.task_id)
    assert stored is not None and stored.status == "cancelled"
    again = assert_error(
        await cloudai.post(f"/api/tasks/{task.task_id}/cancel", headers=headers), 409, "TASK_NOT_CANCELLABLE"
    )
    assert again["details"]["status"] == "cancelled"
    for status in ("completed", "failed"):
        ended = seed_task(services, status=status)
        error = assert_error(
            await cloudai.post(f"/api/tasks/{ended.task_id}/cancel", headers=headers),
            409,
            "TASK_NOT_CANCELLABLE",
        )
        assert status in error["message"]


async def test_list_filters_by_status_and_user_and_pages(
    cloudai: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    mine = [seed_task(services, user_id="alice") for _ in range(3)]
    running = seed_task(services, user_id="bob", status="running")
    seed_task(services, user_id="bob", status="timeout")

    everything = (await cloudai.get("/api/tasks", headers=headers)).json()
    assert (everything["total"], everything["limit"], everything["offset"]) == (5, 50, 0)
    assert set(everything["tasks"][0]) == {"task_id", "user_id", "status", "created_at", "worker_id"}

    alice = (await cloudai.get("/api/tasks", params={"user_id": "alice"}, headers=headers)).json()
    assert alice["total"] == 3
    assert {t["task_id"] for t in alice["tasks"]} == {t.task_id for t in mine}
    assert {t["user_id"] for t in alice["tasks"]} == {"alice"}

    queued = (await cloudai.get("/api/tasks", params={"status": "queued"}, headers=headers)).json()
    assert queued["total"] == 3 and {t["status"] for t in queued["tasks"]} == {"queued"}
    bob_running = (
        await cloudai.get("/api/tasks", params={"status": "running", "user_id": "bob"}, headers=headers)
    ).json()
    assert [t["task_id"] for t in bob_running["tasks"]] == [running.task_id]
    assert bob_running["tasks"][0]["worker_id"] == "grey-worker-test"
    failed = (await cloudai.get("/api/tasks", params={"status": "failed"}, headers=headers)).json()
    assert failed["total"] == 1  # Grey's timeout is CloudAI's failed
    pending = (await cloudai.get("/api/tasks", params={"status": "pending"}, headers=headers)).json()
    assert pending["total"] == 0

    pages = []
    for offset in (0, 2, 4):
        page = (
            await cloudai.get("/api/tasks", params={"limit": 2, "offset": offset}, headers=headers)
        ).json()
        assert (page["total"], page["limit"], page["offset"]) == (5, 2, offset)
        pages += [t["task_id"] for t in page["tasks"]]
    assert len(pages) == 5 and set(pages) == {t["task_id"] for t in everything["tasks"]}
    assert pages == [t["task_id"] for t in everything["tasks"]]  # newest first, stable


async def test_list_refuses_bad_and_unknown_query_parameters(
    cloudai: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for params in (
        {"status": "sleeping"},
        {"limit": "0"},
        {"limit": "1001"},
        {"offset": "-1"},
        {"limit": "ten"},
        {"user_id": ""},
        {"page": "2"},
        {"cursor": "abc"},
        {"status": "running", "sort": "created_at"},
    ):
        error = assert_error(
            await cloudai.get("/api/tasks", params=params, headers=headers), 400, "INVALID_REQUEST"
        )
        assert error["details"].get("parameter") in params, (params, error)


async def test_every_operation_refuses_unknown_query_parameters(
    cloudai: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    seed_worker(services)
    task = seed_task(services)
    calls = [
        ("GET", f"/api/tasks/{task.task_id}"),
        ("GET", f"/api/tasks/{task.task_id}/logs"),
        ("POST", f"/api/tasks/{task.task_id}/cancel"),
        ("GET", "/api/workers"),
        ("GET", "/api/workers/grey-worker-test"),
        ("GET", "/api/cluster/status"),
        ("POST", "/api/tasks"),
    ]
    for method, path in calls:
        response = await cloudai.request(
            method,
            path,
            params={"verbose": "1"},
            headers=headers,
            json=SUBMIT if path == "/api/tasks" else None,
        )
        error = assert_error(response, 400, "INVALID_REQUEST")
        assert error["details"]["parameter"] == "verbose", (method, path)
    still = services.store.tasks.find("acme", task.task_id)
    assert still is not None and still.status == "pending"  # the refused cancel did nothing


async def test_user_id_never_reaches_another_tenant(
    cloudai: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    theirs = seed_task(services, tenant="globex", user_id="user-123")
    mine = seed_task(services, tenant="acme", user_id="user-123")
    listed = (await cloudai.get("/api/tasks", params={"user_id": "user-123"}, headers=headers)).json()
    assert [t["task_id"] for t in listed["tasks"]] == [mine.task_id]
    for path in (f"/api/tasks/{theirs.task_id}", f"/api/tasks/{theirs.task_id}/logs"):
        assert_error(await cloudai.get(path, headers=headers), 404, "TASK_NOT_FOUND")
    assert_error(
        await cloudai.post(f"/api/tasks/{theirs.task_id}/cancel", headers=headers), 404, "TASK_NOT_FOUND"
    )
    kept = services.store.tasks.find("globex", theirs.task_id)
    assert kept is not None and kept.status == "pending"
    globex = headers_for(services, "globex")
    seen = (await cloudai.get("/api/tasks", headers=globex)).json()
    assert [t["task_id"] for t in seen["tasks"]] == [theirs.task_id]
