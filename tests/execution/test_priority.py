"""Priority: an urgent task behind a backlog waits at most for the tasks holding worker threads.

Every pool has one broker queue per priority (Dramatiq's actor priority alone would not
reorder a broker queue). The pool's T threads are held by T blockers; 1,000 tasks of the
lower priority queue up behind them, then one urgent task; then the blockers finish.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from runtime.execution.functions import TaskContext, task_function
from runtime.store import NewTask
from tests.execution.conftest import Gateway, broker_url_for

THREADS = 4
BACKLOG = 1000
RELEASE = threading.Event()


@task_function("test_blocker")
def blocker(data: Any, ctx: TaskContext) -> dict[str, Any]:
    while not RELEASE.wait(0.02):
        ctx.check()
    return {}


def queue_backlog(gateway: Gateway, priority: str, count: int) -> list[str]:
    """What submit does (store, then broker), minus HTTP, to build the backlog fast."""
    ids = []
    for _ in range(count):
        task = gateway.store.tasks.insert(
            NewTask(tenant_id="acme", type="stateless", payload={"function": "noop"}, priority=priority)
        )
        gateway.services.runtime.dispatch.send(task)
        ids.append(task.task_id)
    return ids


@pytest.mark.parametrize("broker", ["embedded", "redis", "rabbitmq"])
@pytest.mark.parametrize(("urgent", "backlog"), [("critical", "normal"), ("high", "low")])
async def test_an_urgent_task_overtakes_a_backlog_of_a_thousand(
    make_gateway: Any, broker: str, urgent: str, backlog: str
) -> None:
    gateway = await make_gateway(broker_url=broker_url_for(broker))
    RELEASE.clear()
    gateway.pool(threads=THREADS)
    try:
        blockers = [
            (await gateway.submit(payload={"function": "test_blocker"}, priority=backlog))["task_id"]
            for _ in range(THREADS)
        ]
        await gateway.wait(blockers, ("running",))
        waiting = await asyncio.to_thread(queue_backlog, gateway, backlog, BACKLOG)
        urgent_id = (await gateway.submit(payload={"function": "noop"}, priority=urgent))["task_id"]
        await asyncio.sleep(0.3)  # consumers fetch the new messages meanwhile
    finally:
        RELEASE.set()
    [done] = await gateway.wait(urgent_id, ("completed",), timeout=20)
    assert done.started_at is not None
    started = gateway.store.tasks.statuses(None, waiting)
    records = [gateway.record(task_id) for task_id, status in started.items() if status != "pending"]
    overtaken_by = [r for r in records if r.started_at is not None and r.started_at < done.started_at]
    assert len(overtaken_by) <= THREADS, f"{len(overtaken_by)} {backlog} tasks started first"
