"""A worker process killed with SIGKILL in the middle of 200 running tasks loses none of them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from runtime.store import Store
from runtime.store.coltypes import utc_now
from tests.conftest import empty_store
from tests.execution.conftest import Deployment, Gateway, broker_url_for, start_worker_process

THREADS = 100  # two processes: all 200 tasks run at once


async def test_sigkill_of_a_worker_process_mid_run_loses_no_task(
    make_gateway: Any, tmp_path: Path, postgres_url: Any
) -> None:
    # A real deployment: Redis broker, PostgreSQL store, worker processes apart from the gateway.
    broker = broker_url_for("redis")
    with Store.open(postgres_url) as store:
        empty_store(store)
    database = postgres_url.render_as_string(hide_password=False)
    deployment = Deployment.write(tmp_path, broker, database, nodes=2, threads=THREADS)
    gateway: Gateway = await make_gateway(
        broker_url=broker, database_url=database, cluster=deployment.cluster()
    )
    # Dramatiq prefetches 2 x threads per queue: one process could hold all 200 messages.
    env = deployment.env(dramatiq_queue_prefetch=str(THREADS))
    # Small requests: 100 default ones (0.5 GB each) would not fit this machine's memory.
    body: dict[str, Any] = {
        "payload": {"function": "sleep", "data": {"seconds": 5.0}},
        "resources": {"memory_gb": 0.05},
    }
    # 200 one-core tasks at once: above the default cpu_cores quota (100) of the tenant.
    gateway.store.quotas.update("acme", {"cpu_cores": 1000}, "200 tasks at once")
    ids = []
    for _ in range(10):
        ids += [t["task_id"] for t in await asyncio.gather(*(gateway.submit(**body) for _ in range(20)))]
    workers = [start_worker_process(env, THREADS) for _ in range(2)]
    try:
        deadline = time.monotonic() + 20
        while len([n for n in gateway.store.nodes.list(role="worker") if n.status == "active"]) < 2:
            assert time.monotonic() < deadline, "worker processes did not register"
            await asyncio.sleep(0.1)
        nodes = {n.info["pid"]: n.node_id for n in gateway.store.nodes.list(role="worker")}
        victim = workers[0]
        victim_node = nodes[victim.pid]
        deadline = time.monotonic() + 20
        while True:
            if list(gateway.store.tasks.statuses(None, ids).values()).count("running") == 200:
                running = [gateway.record(i) for i in ids]
                break
            assert time.monotonic() < deadline, f"only {len(running)} of 200 running at once"
            await asyncio.sleep(0.05)
        on_victim = [t for t in running if t.executed_on == victim_node]
        assert len(on_victim) >= 50, f"the victim ran only {len(on_victim)}"
        killed_at = utc_now()
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        tasks = await gateway.wait(ids, timeout=60)
        assert [t.status for t in tasks] == ["completed"] * 200
        lost = {t.task_id for t in on_victim}
        rerun = [t for t in tasks if t.task_id in lost]
        # Each was run again elsewhere, or had finished in the moment before the kill.
        assert all(
            (t.attempt >= 2 and t.executed_on != victim_node)
            or (t.completed_at and t.completed_at <= killed_at)
            for t in rerun
        )
        # The kill hit running work (on a loaded machine some of the victim's tasks finish first).
        assert sum(1 for t in rerun if t.attempt >= 2) >= 10
        victim_record = gateway.store.nodes.get(victim_node)
        assert victim_record is not None and victim_record.status == "down"
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
