"""Bounded worker shutdown: no new work, a grace for running tasks, then what still runs
goes back to pending (its attempt recorded, no retry spent) and runs elsewhere."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from runtime.execution.functions import TaskContext, task_function
from runtime.execution.workers import HAND_BACK_SECONDS
from tests.execution.conftest import ROOT, Deployment, Gateway, broker_url_for


class BlockingInput(BaseModel):
    seconds: float


@task_function("test_blocking_sleep", input=BlockingInput)
def blocking_sleep(data: BlockingInput, ctx: TaskContext) -> dict[str, Any]:
    """Never checks its context: only a thread exception, once it is back in Python, stops it."""
    time.sleep(data.seconds)
    return {"slept": data.seconds}


def sleep(seconds: float) -> dict[str, Any]:
    return {"payload": {"function": "sleep", "data": {"seconds": seconds}}}


def messages(gateway: Gateway, task_id: str) -> list[str]:
    return [event.message or "" for event in gateway.store.tasks.events_after(task_id, 0)]


async def test_a_stopping_pool_hands_a_long_task_back_after_the_grace_and_another_runs_it(
    gateway: Gateway,
) -> None:
    first = gateway.pool(threads=2)
    task_id = (await gateway.submit(**sleep(2.0)))["task_id"]
    [running] = await gateway.wait(task_id, ("running",))
    assert running.executed_on == first.node_id
    second = gateway.pool(threads=2)
    started = time.monotonic()
    interrupted = await asyncio.to_thread(first.stop, 0.3)
    assert time.monotonic() - started < 0.3 + 1.5
    assert interrupted == [task_id]
    [done] = await gateway.wait(task_id)
    assert (done.status, done.attempt, done.retry_count, done.executed_on) == (
        "completed",
        2,
        0,
        second.node_id,
    )
    assert done.error is None
    assert any(f"attempt 1 handed back by {first.node_id}" in m for m in messages(gateway, task_id))
    node = gateway.store.nodes.get(first.node_id)
    assert node is not None and node.status == "down"


async def test_a_task_that_ends_within_the_grace_is_left_to_finish(gateway: Gateway) -> None:
    pool = gateway.pool(threads=2)
    task_id = (await gateway.submit(**sleep(0.5)))["task_id"]
    await gateway.wait(task_id, ("running",))
    assert await asyncio.to_thread(pool.stop, 5.0) == []
    [done] = await gateway.wait(task_id, timeout=1)
    assert (done.status, done.attempt, done.executed_on) == ("completed", 1, pool.node_id)


async def test_a_task_that_never_returns_to_python_is_handed_back_by_the_stopping_pool(
    gateway: Gateway,
) -> None:
    first = gateway.pool(threads=2)
    payload: dict[str, Any] = {"payload": {"function": "test_blocking_sleep", "data": {"seconds": 3.0}}}
    task_id = (await gateway.submit(**payload))["task_id"]
    await gateway.wait(task_id, ("running",))
    second = gateway.pool(threads=2)
    started = time.monotonic()
    assert await asyncio.to_thread(first.stop, 0.2) == [task_id]
    assert time.monotonic() - started < 0.2 + HAND_BACK_SECONDS + 1.5  # not the task's 3 s
    [done] = await gateway.wait(task_id)
    assert (done.status, done.attempt, done.retry_count, done.executed_on) == (
        "completed",
        2,
        0,
        second.node_id,
    )
    assert any("the task did not stop" in m for m in messages(gateway, task_id))


async def test_sigterm_to_grey_worker_hands_its_running_task_back_and_exits_within_the_grace(
    make_gateway: Any, tmp_path: Path
) -> None:
    broker = broker_url_for("redis")
    database = f"sqlite:///{tmp_path / 'grey.db'}"
    deployment = Deployment.write(tmp_path, broker, database, nodes=1, threads=2, timeout=1.5)
    gateway: Gateway = await make_gateway(
        broker_url=broker, database_url=database, cluster=deployment.cluster()
    )
    grace = 1.0
    env = deployment.env(GREY_SHUTDOWN_GRACE_SECONDS=str(grace))
    log = (tmp_path / "worker.log").open("wb")
    command = [sys.executable, "-m", "runtime.cli", "worker", "--processes", "1", "--threads", "2"]
    worker = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not [n for n in gateway.store.nodes.list(role="worker") if n.status == "active"]:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker process did not register"
            await asyncio.sleep(0.1)
        [node] = gateway.store.nodes.list(role="worker")
        task_id = (await gateway.submit(**sleep(4.0)))["task_id"]
        [running] = await gateway.wait(task_id, ("running",))
        assert running.executed_on == node.node_id
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=grace + 15) == 0
        took = time.monotonic() - started
        assert took < grace + 4, f"exited {took:.1f}s after SIGTERM"
        handed = gateway.record(task_id)
        assert (handed.status, handed.attempt, handed.retry_count) == ("pending", 1, 0)
        assert any(f"attempt 1 handed back by {node.node_id}" in m for m in messages(gateway, task_id))
        stopped = gateway.store.nodes.get(node.node_id)
        assert stopped is not None and stopped.status == "down"
        survivor = gateway.pool(threads=2)
        [done] = await gateway.wait(task_id)
        assert (done.status, done.attempt, done.retry_count, done.executed_on) == (
            "completed",
            2,
            0,
            survivor.node_id,
        )
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        log.close()
