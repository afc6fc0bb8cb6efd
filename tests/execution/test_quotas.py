"""Tenant quotas with workers running (embedded broker and Redis): max_concurrent_tasks,
cpu_cores and memory_gb hold tasks pending, never over-run, and spend no retry; usage says
what runs and `throttled` while a tenant is held back; other tenants run regardless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from runtime.services.auth import SCOPES
from tests.execution.conftest import Gateway


def sleep(seconds: float, **resources: float) -> dict[str, Any]:
    body: dict[str, Any] = {"payload": {"function": "sleep", "data": {"seconds": seconds}}}
    if resources:
        body["resources"] = resources
    return body


async def set_quotas(gateway: Gateway, **quotas: int) -> None:
    response = await gateway.client.patch(
        "/v1/governance/quotas", json={**quotas, "reason": "test"}, headers=gateway.headers
    )
    assert response.status_code == 200, response.text


async def usage(gateway: Gateway, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await gateway.client.get("/v1/cluster/usage", headers=headers or gateway.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not {what} after {timeout}s"
        await asyncio.sleep(0.05)


async def test_the_reported_case_holds_the_two_core_task_and_refuses_the_rest(gateway: Gateway) -> None:
    """max_concurrent_tasks 1, max_queue_depth 1, cpu_cores 1, five 2-core tasks: once
    accepted, four refused; the one accepted never runs over the 1 core until it is raised."""
    await set_quotas(gateway, max_concurrent_tasks=1, max_queue_depth=1, cpu_cores=1)
    gateway.pool(threads=4)
    answers = [
        await gateway.client.post(
            "/v1/tasks", json={"type": "stateless", **sleep(0.1, cpu=2)}, headers=gateway.headers
        )
        for _ in range(5)
    ]
    assert [answer.status_code for answer in answers] == [201, 503, 503, 503, 503]
    assert {answer.json()["error"]["code"] for answer in answers[1:]} == {"queue_full"}
    held = answers[0].json()["task_id"]

    seen = await usage(gateway)
    assert seen["throttled"] is True
    assert seen["quotas"]["cpu_cores"] == {"limit": 1, "used": 0, "available": 1}
    assert seen["quotas"]["max_queue_depth"]["used"] == 1
    # Held back at least twice (its message came back), never started, no retry spent.
    first_send = gateway.record(held).sent_at
    await until(lambda: gateway.record(held).sent_at != first_send, "sent again")
    record = gateway.record(held)
    assert (record.status, record.attempt, record.retry_count, record.started_at) == ("pending", 0, 0, None)

    await set_quotas(gateway, cpu_cores=2)
    [done] = await gateway.wait(held, timeout=20)
    assert (done.status, done.retry_count) == ("completed", 0)
    assert (await usage(gateway))["throttled"] is False


async def test_running_tasks_never_exceed_max_concurrent_tasks(gateway: Gateway) -> None:
    await set_quotas(gateway, max_concurrent_tasks=2)
    gateway.pool(threads=4)
    ids = [(await gateway.submit(**sleep(0.3)))["task_id"] for _ in range(6)]
    most = 0
    throttled_seen = False
    deadline = time.monotonic() + 30
    while True:
        now = gateway.store.figures.tenant_usage("acme")  # one statement: one moment
        most = max(most, now.running)
        assert now.running <= 2, f"{now.running} running with max_concurrent_tasks 2"
        if not throttled_seen and now.running == 2 and now.pending:
            throttled_seen = (await usage(gateway))["throttled"]
        if now.running + now.pending == 0:
            break
        assert time.monotonic() < deadline, now
        await asyncio.sleep(0.02)
    records = [gateway.record(task_id) for task_id in ids]
    assert [record.status for record in records] == ["completed"] * 6
    assert most == 2  # the limit is used, not just respected
    assert throttled_seen
    assert all(record.retry_count == 0 for record in records)  # held back, not retried


async def test_cpu_cores_quota_holds_tasks_until_cores_are_free(gateway: Gateway) -> None:
    await set_quotas(gateway, cpu_cores=3)
    gateway.pool(threads=4)
    ids = [(await gateway.submit(**sleep(0.3, cpu=2)))["task_id"] for _ in range(3)]
    deadline = time.monotonic() + 30
    while True:
        cpu = (await usage(gateway))["quotas"]["cpu_cores"]
        assert cpu["used"] <= 3, cpu  # 2 + 2 > 3: one task at a time
        now = gateway.store.figures.tenant_usage("acme")
        assert now.running <= 1, now
        if now.running + now.pending == 0:
            break
        assert time.monotonic() < deadline, now
        await asyncio.sleep(0.02)
    assert [gateway.record(task_id).status for task_id in ids] == ["completed"] * 3


async def test_one_tenant_held_back_does_not_hold_back_another(gateway: Gateway) -> None:
    await set_quotas(gateway, max_concurrent_tasks=1)
    gateway.pool(threads=4)
    acme = [(await gateway.submit(**sleep(30)))["task_id"] for _ in range(3)]
    await gateway.wait(acme[0], ("running",))

    globex_headers = {"Authorization": f"Bearer {gateway.services.auth.create_key('globex', SCOPES)}"}
    globex = []
    for _ in range(3):
        response = await gateway.client.post(
            "/v1/tasks", json={"type": "stateless", **sleep(0.05)}, headers=globex_headers
        )
        assert response.status_code == 201, response.text
        globex.append(response.json()["task_id"])
    assert all(r.status == "completed" for r in await gateway.wait(globex, timeout=20))
    assert (await usage(gateway, globex_headers))["throttled"] is False

    statuses = [gateway.record(task_id).status for task_id in acme]
    assert statuses == ["running", "pending", "pending"]  # acme's own limit still holds
    assert (await usage(gateway))["throttled"] is True
    for task_id in acme:
        await gateway.client.request(
            "DELETE", f"/v1/tasks/{task_id}", json={"reason": "done"}, headers=gateway.headers
        )
    await gateway.wait(acme)
