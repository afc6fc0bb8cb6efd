"""CloudAI's workers and cluster status: the reference's fields, from the store's rows."""

from __future__ import annotations

import httpx

from runtime.services import Services
from tests.handlers.cloudai.conftest import headers_for, seed_task, seed_worker
from tests.handlers.cloudai.test_tasks import assert_error

REFERENCE_FIELDS = {
    "worker_id",
    "worker_ip",
    "total_cpu",
    "total_memory",
    "total_storage",
    "total_gpu",
    "allocated_cpu",
    "allocated_memory",
    "allocated_storage",
    "allocated_gpu",
    "available_cpu",
    "available_memory",
    "available_storage",
    "available_gpu",
    "is_active",
    "last_heartbeat",
    "registered_at",
}


async def test_workers_show_total_allocated_and_available(
    cloudai: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    node = seed_worker(services, "worker-1", cpu=8, memory_gb=16, storage_gb=100, gpus=0)
    seed_task(services, status="running", worker="worker-1")
    seed_task(services, status="running", worker="worker-1", resources={"cpu": 0.5, "memory_gb": 1.5})
    seed_task(services, status="completed", worker="worker-1")  # ended: holds nothing
    response = await cloudai.get("/api/workers", headers=headers)
    assert response.status_code == 200, response.text
    [worker] = response.json()["workers"]
    assert set(worker) >= REFERENCE_FIELDS
    assert worker["worker_id"] == "worker-1" and worker["worker_ip"] == "192.168.1.100:50052"
    assert (worker["total_cpu"], worker["total_memory"], worker["total_storage"]) == (8.0, 16.0, 100.0)
    assert (worker["allocated_cpu"], worker["allocated_memory"], worker["allocated_storage"]) == (
        1.5,
        3.5,
        5.0,
    )
    assert (worker["available_cpu"], worker["available_memory"], worker["available_storage"]) == (
        6.5,
        12.5,
        95.0,
    )
    for kind in ("cpu", "memory", "storage", "gpu"):
        assert worker[f"allocated_{kind}"] + worker[f"available_{kind}"] == worker[f"total_{kind}"]
    assert worker["is_active"] is True and worker["containers"] is True
    assert node.last_heartbeat is not None
    assert worker["last_heartbeat"] == int(node.last_heartbeat.timestamp())


async def test_worker_detail_lists_the_callers_running_tasks_only(
    cloudai: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    seed_worker(services, "worker-1")
    mine = seed_task(services, status="running", worker="worker-1", user_id="alice")
    seed_task(services, tenant="globex", status="running", worker="worker-1", user_id="mallory")
    response = await cloudai.get("/api/workers/worker-1", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= REFERENCE_FIELDS
    assert [(t["task_id"], t["user_id"]) for t in body["running_tasks"]] == [(mine.task_id, "alice")]
    assert body["running_tasks"][0]["started_at"]
    assert body["allocated_cpu"] == 2.0  # both tenants' tasks hold the worker's resources


async def test_unknown_worker_is_worker_not_found(
    cloudai: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    error = assert_error(await cloudai.get("/api/workers/worker-x", headers=headers), 404, "WORKER_NOT_FOUND")
    assert error["details"] == {"worker_id": "worker-x"}


async def test_cluster_status_sums_active_workers_and_counts_the_tenants_tasks(
    cloudai: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    seed_worker(services, "worker-1", cpu=8, memory_gb=16, storage_gb=100, gpus=0)
    seed_worker(services, "worker-2", cpu=16, memory_gb=32, storage_gb=200, gpus=2, pool="gpu")
    seed_worker(services, "worker-3", cpu=4, status="down")
    seed_task(services, status="running", worker="worker-1")
    seed_task(services)
    seed_task(services)
    seed_task(services, status="completed", worker="worker-1")
    seed_task(services, tenant="globex")  # another tenant's: not counted
    response = await cloudai.get("/api/cluster/status", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["total_workers"], body["active_workers"]) == (3, 2)
    assert (body["total_cpu"], body["total_memory"], body["total_storage"], body["total_gpu"]) == (
        24.0,
        48.0,
        300.0,
        2.0,
    )
    assert (body["available_cpu"], body["available_memory"], body["available_storage"]) == (23.0, 46.0, 295.0)
    assert (body["total_tasks"], body["running_tasks"], body["queued_tasks"], body["completed_tasks"]) == (
        4,
        1,
        2,
        1,
    )
    globex = (await cloudai.get("/api/cluster/status", headers=headers_for(services, "globex"))).json()
    assert (globex["total_tasks"], globex["queued_tasks"]) == (1, 1)
