"""Pools and nodes: registration with real resources, GPUs, placement, heartbeats, admin."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest

from runtime.execution import gpu, host
from runtime.execution.processes import WorkerStartError, _child_env, plan
from runtime.settings import Settings
from runtime.store import TaskRecord
from tests.execution.conftest import Gateway

MATMUL_ON_GPU: dict[str, Any] = {
    "payload": {"function": "matmul", "data": {"n": 16}},
    "resources": {"gpu": 1},
}


async def test_a_gpu_task_without_any_gpu_pool_is_rejected_at_submit(gateway: Gateway) -> None:
    gateway.pool()
    response = await gateway.client.post(
        "/v1/tasks", json={"type": "stateless", **MATMUL_ON_GPU}, headers=gateway.headers
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "unschedulable" and "gpu" in error["message"]
    assert (await gateway.client.get("/v1/tasks", headers=gateway.headers)).json()["total"] == 0


async def test_gpu_tasks_run_only_on_gpu_nodes_and_say_the_device_was_emulated(gateway: Gateway) -> None:
    cpu = gateway.pool()
    [device] = gpu.emulated(1)
    gpu_pool = gateway.pool(pool="gpu", device=device, threads=2)
    gpu_ids = [(await gateway.submit(**MATMUL_ON_GPU))["task_id"] for _ in range(3)]
    cpu_ids = [
        (await gateway.submit(payload={"function": "matmul", "data": {"n": 16}}))["task_id"] for _ in range(3)
    ]
    tasks = {t.task_id: t for t in await gateway.wait(gpu_ids + cpu_ids)}
    for task_id in gpu_ids:
        task = tasks[task_id]
        assert (task.status, task.pool, task.executed_on, task.device_emulated) == (
            "completed",
            "gpu",
            gpu_pool.node_id,
            True,
        )
        assert (
            task.result is not None and task.result["emulated"] is True and task.result["backend"] == "numpy"
        )
    for task_id in cpu_ids:
        assert (tasks[task_id].executed_on, tasks[task_id].device_emulated) == (cpu.node_id, False)
    view = await gateway.task(gpu_ids[0])
    assert view["device_emulated"] is True and view["pool"] == "gpu"
    too_big = await gateway.client.post(
        "/v1/tasks",
        json={"type": "stateless", "payload": {"function": "matmul"}, "resources": {"gpu": 2}},
        headers=gateway.headers,
    )
    assert (too_big.status_code, too_big.json()["error"]["code"]) == (409, "unschedulable")


def test_the_gpu_pool_refuses_to_start_without_gpus_unless_emulating() -> None:
    settings = Settings(broker_url="redis://127.0.0.1:6379/9")
    if gpu.discover():
        pytest.skip("this machine has GPUs")
    with pytest.raises(WorkerStartError, match="emulate-gpus"):
        plan(settings, "gpu", None, None, None, None)
    chosen = plan(settings, "gpu", None, 2, "critical,high", 2)
    assert (chosen.processes, chosen.threads, chosen.priorities) == (2, 2, ("critical", "high"))
    env = _child_env(chosen.devices[1])  # one process per GPU, pinned
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["GREY_EMULATED_GPU"] == "1"
    with pytest.raises(WorkerStartError, match="redis"):
        plan(Settings(broker_url="embedded"), "cpu", None, None, None, None)


async def test_nodes_register_real_resources_and_appear_in_the_api(gateway: Gateway) -> None:
    cpu = gateway.pool(threads=3)
    gpu_pool = gateway.pool(pool="gpu", device=gpu.emulated(1)[0], threads=1)
    nodes = (await gateway.client.get("/v1/cluster/nodes", headers=gateway.headers)).json()["nodes"]
    by_id = {n["node_id"]: n for n in nodes}
    assert by_id[gateway.services.node_id]["role"] == "gateway"
    worker = by_id[cpu.node_id]
    assert (worker["role"], worker["pool"], worker["status"]) == ("worker", "cpu", "active")
    assert worker["resources"]["cpu_cores"] == host.cpu_cores()
    assert worker["resources"]["memory_gb"] == host.memory_gb()
    await asyncio.sleep(0.3)  # a heartbeat reports capacity and allocation
    nodes = (await gateway.client.get("/v1/cluster/nodes?role=worker", headers=gateway.headers)).json()[
        "nodes"
    ]
    by_id = {n["node_id"]: n for n in nodes}
    assert by_id[cpu.node_id]["capacity"]["cpu_cores"] == 3
    gpu_node = by_id[gpu_pool.node_id]
    assert gpu_node["resources"]["gpus"] == 1
    assert gpu_node["resources"]["gpu_devices"][0]["emulated"] is True
    assert gpu_node["resources"]["gpu_devices"][0]["memory_total_mb"] > 0


def started_at(task: TaskRecord) -> datetime:
    assert task.started_at is not None, task.task_id
    return task.started_at


async def test_a_task_waits_for_room_on_its_node(gateway: Gateway) -> None:
    gateway.pool(threads=4)  # capacity: 4 cores
    big: dict[str, Any] = {
        "payload": {"function": "sleep", "data": {"seconds": 0.3}},
        "resources": {"cpu": 3},
    }
    first, second = [(await gateway.submit(**big))["task_id"] for _ in range(2)]
    a, b = sorted(await gateway.wait([first, second]), key=started_at)
    assert a.completed_at is not None and b.started_at is not None and b.started_at >= a.completed_at


async def test_a_node_whose_heartbeat_stops_is_marked_down_and_its_tasks_run_elsewhere(
    gateway: Gateway,
) -> None:
    doomed = gateway.pool(threads=4)
    ids = [
        (await gateway.submit(payload={"function": "sleep", "data": {"seconds": 0.8}}))["task_id"]
        for _ in range(4)
    ]
    await gateway.wait(ids, ("running",))
    doomed.kill()  # no more heartbeats; its threads finish but can no longer record anything
    survivor = gateway.pool(threads=4)
    tasks = await gateway.wait(ids, timeout=10)
    assert [t.status for t in tasks] == ["completed"] * 4
    assert {t.executed_on for t in tasks} == {survivor.node_id}
    assert all(t.attempt == 2 for t in tasks)
    node = gateway.store.nodes.get(doomed.node_id)
    assert node is not None and node.status == "down"
    messages = [e.message or "" for e in gateway.store.tasks.events_after(ids[0], 0)]
    assert any("stopped heartbeating" in m for m in messages)


async def test_quarantine_and_drain_stop_new_work_until_activated(gateway: Gateway) -> None:
    pool = gateway.pool()
    path = f"/v1/cluster/nodes/{pool.node_id}"
    reader = gateway.services.auth.create_key("acme", frozenset({"cluster:read"}))
    denied = await gateway.client.post(f"{path}/quarantine", headers={"Authorization": f"Bearer {reader}"})
    assert denied.status_code == 403
    missing = await gateway.client.post("/v1/cluster/nodes/nope/quarantine", headers=gateway.headers)
    assert missing.status_code == 404
    for action, status in (("quarantine", "quarantined"), ("drain", "draining")):
        response = await gateway.client.post(f"{path}/{action}", headers=gateway.headers)
        assert response.status_code == 200 and response.json()["status"] == status
        await asyncio.sleep(0.6)  # the node hears it at its next heartbeat
        assert not pool.consuming
        task_id = (await gateway.submit(payload={"function": "echo"}))["task_id"]
        await asyncio.sleep(0.4)
        assert gateway.record(task_id).status == "pending"
        health = (await gateway.client.get("/v1/cluster/health", headers=gateway.headers)).json()
        assert health["nodes"][status] == 1
        activated = await gateway.client.post(f"{path}/activate", headers=gateway.headers)
        assert activated.json()["status"] == "active"
        assert (await gateway.wait(task_id))[0].status == "completed"


async def test_health_and_usage_report_real_figures(gateway: Gateway) -> None:
    ids = [(await gateway.submit(payload={"function": "echo"}, resources={"cpu": 2})) for _ in range(3)]
    health = (await gateway.client.get("/v1/cluster/health", headers=gateway.headers)).json()
    assert health["queue"]["depth"] == 3  # from the broker: nobody consumes yet
    assert health["nodes"]["active"] == 1 and health["nodes"]["total"] == 1  # the gateway
    pool = gateway.pool()
    await gateway.wait([t["task_id"] for t in ids])
    blocker = await gateway.submit(
        payload={"function": "sleep", "data": {"seconds": 3}}, resources={"cpu": 2}
    )
    await gateway.wait(blocker["task_id"], ("running",))
    # Heartbeats here time out after 1 s: on a loaded box a node can be marked down for a
    # beat and re-register at the next, so read until both count (within the blocker's run).
    for _ in range(20):
        health = (await gateway.client.get("/v1/cluster/health", headers=gateway.headers)).json()
        if health["nodes"]["active"] == 2 and health["healthy"]:
            break
        await asyncio.sleep(0.1)
    assert health["queue"]["depth"] == 0
    assert health["nodes"]["active"] == 2 and health["healthy"] is True
    assert health["throughput"]["tasks_last_hour"] == 3 and health["throughput"]["tasks_per_second"] > 0
    usage = (await gateway.client.get("/v1/cluster/usage", headers=gateway.headers)).json()
    assert usage["quotas"]["cpu_cores"]["used"] == 2
    assert usage["quotas"]["max_concurrent_tasks"]["used"] == 1
    assert pool.node_id in {
        n["node_id"]
        for n in (await gateway.client.get("/v1/cluster/nodes", headers=gateway.headers)).json()["nodes"]
    }
