"""A worker process killed (SIGKILL) while its container runs: the task runs again on
another worker, the dead worker's allocation drops, and its container does not outlive it
(swept once its attempt is over)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from runtime.execution.containers import sweep
from runtime.execution.containers.settings import ContainerSettings
from runtime.services.workers import Resources, get_worker
from runtime.store import Store
from tests.conftest import empty_store
from tests.execution.conftest import Deployment, Gateway, broker_url_for, start_worker_process
from tests.execution.containers.conftest import grey_containers, submit_container

SLEEP = 12  # seconds the task's command runs


async def _until(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_a_killed_workers_container_task_runs_again_and_its_container_goes(
    make_gateway: Any,
    tmp_path: Path,
    postgres_url: Any,
    container_settings: ContainerSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sweep, "SWEEP_INTERVAL_SECONDS", 0.5)
    broker = broker_url_for("redis")
    with Store.open(postgres_url) as store:
        empty_store(store)
    database = postgres_url.render_as_string(hide_password=False)
    deployment = Deployment.write(tmp_path, broker, database, nodes=1, threads=2)
    gateway: Gateway = await make_gateway(
        broker_url=broker, database_url=database, cluster=deployment.cluster()
    )
    env = deployment.env(
        GREY_CONTAINER_PROBE_IMAGE=container_settings.probe_image,
        GREY_CONTAINER_BUILD_PROBE_IMAGE="off",
        GREY_CONTAINER_PULL="never",
    )
    victim = start_worker_process(env, 2)
    try:

        def registered() -> bool:
            return any(
                n.info.get("containers") for n in gateway.store.nodes.list(role="worker", status="active")
            )

        await _until(registered, 30, "the worker process did not register as able to run containers")
        gateway.services.runtime.forget_nodes()
        task = await submit_container(gateway, f"sleep {SLEEP}; echo finished", cpu=1.0, memory_gb=0.125)
        first = f"{task.task_id}-1"
        await _until(lambda: bool(grey_containers(container_settings, first)), 30, "no container")
        started = time.monotonic()
        victim_node = gateway.record(task.task_id).executed_on
        assert victim_node is not None
        assert get_worker(gateway.store, victim_node).allocated.cpu == 1.0
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        # The reaper (this gateway's node) declares it dead: the attempt is re-queued.
        await _until(
            lambda: get_worker(gateway.store, victim_node).allocated == Resources(),
            15,
            "allocation not released",
        )
        gateway.pool(threads=2, containers=container_settings)  # a survivor, sweeping as it starts
        await _until(
            lambda: not grey_containers(container_settings, first), 20, "the dead worker's container is left"
        )
        # Removed by the sweep, well before its command would have ended by itself.
        assert time.monotonic() - started < SLEEP - 2
        [done] = await gateway.wait(task.task_id, timeout=60)
        assert done.status == "completed" and done.attempt == 2
        assert done.result is not None and "finished" in done.result["output"]
        assert done.executed_on != victim_node
        assert not grey_containers(container_settings, task.task_id)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
