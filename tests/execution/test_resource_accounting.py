"""Resource accounting is true: what the worker views show as allocated is what running
tasks requested, `allocated + available == total` in every view sampled, no worker is ever
over-committed, and everything is released however a task ends (completed, failed,
timed out, cancelled, or its worker died)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from runtime.config import PoolConfig
from runtime.execution.containers.settings import ContainerSettings
from runtime.services.tasks import cancel
from runtime.services.workers import Resources, WorkerView, list_workers
from runtime.store import NewTask, Store, TaskRecord
from tests.execution.conftest import Gateway
from tests.execution.conftest import test_cluster as short_heartbeats
from tests.execution.containers.conftest import submit_container

CORES, STORAGE_GB = 4.0, 10.0
FIGURES = ("cpu", "memory_gb", "storage_gb", "gpu")


def _exact(value: float) -> Decimal:
    return Decimal(str(value))  # the figure as shown (JSON), summed without rounding


@dataclass
class Sampler:
    """Reads the worker views continuously (as the API does) and checks each one."""

    store: Store
    samples: int = 0
    violations: list[str] = field(default_factory=list)
    peak: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0.0))
    _stop: threading.Event = field(default_factory=threading.Event)

    def check(self, view: WorkerView) -> None:
        for name in FIGURES:
            total, allocated, available = (
                getattr(r, name) for r in (view.total, view.allocated, view.available)
            )
            if _exact(allocated) + _exact(available) != _exact(total):
                self.violations.append(f"{view.node_id} {name}: {allocated} + {available} != {total}")
            if allocated > total or available < 0:
                self.violations.append(f"{view.node_id} {name} over-committed: {allocated} of {total}")
            held = sum(getattr(_requested(task), name) for task in view.running_tasks)
            if abs(held - allocated) > 1e-6:
                self.violations.append(
                    f"{view.node_id} {name}: allocated {allocated}, running tasks hold {held}"
                )
            self.peak[name] = max(self.peak[name], allocated)

    def run(self) -> None:
        while not self._stop.is_set():
            for view in list_workers(self.store):
                self.check(view)
            self.samples += 1
            time.sleep(0.005)

    @contextmanager
    def sampling(self) -> Iterator[Sampler]:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


def _requested(task: TaskRecord) -> Resources:
    r = task.resources
    return Resources(
        float(r.get("cpu", 1.0)), float(r.get("memory_gb", 0.5)), float(r.get("storage_gb", 0.0)), 0.0
    )


async def _submit(
    gateway: Gateway, function: str, data: dict[str, Any], timeout: int = 60, **resources: float
) -> str:
    new = NewTask(
        tenant_id="acme",
        type="stateless",
        payload={"function": function, "data": data},
        resources=dict(resources),
        timeout_seconds=timeout,
    )
    return (await gateway.services.runtime.intake.submit(new)).task_id


def _nothing_allocated(store: Store) -> list[str]:
    return [f"{v.node_id}: {v.allocated}" for v in list_workers(store) if v.allocated != Resources()]


async def _until(condition: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_accounting_holds_under_concurrent_mixed_tasks_and_every_ending(make_gateway: Any) -> None:
    cluster = short_heartbeats(
        pools={"cpu": PoolConfig(nodes=1, threads_per_node=8, cpu_cores_per_node=CORES)}
    )
    gateway: Gateway = await make_gateway(cluster=cluster)
    gateway.store.quotas.update("acme", {"cpu_cores": 1000, "memory_gb": 10000}, "accounting test")
    no_containers = ContainerSettings(enabled=False, storage_gb=STORAGE_GB)
    first = gateway.pool(threads=8, containers=no_containers)
    sampler = Sampler(gateway.store)
    with sampler.sampling():
        # Completed: more than fits at once, in mixed sizes.
        sizes = [(0.5, 0.25, 1.0), (1.0, 0.5, 2.0), (1.5, 1.0, 4.0), (2.0, 0.5, 1.0)]
        completing = [
            await _submit(gateway, "sleep", {"seconds": 0.4}, cpu=cpu, memory_gb=mem, storage_gb=disk)
            for cpu, mem, disk in sizes * 4
        ]
        failing = [await _submit(gateway, "fail", {}, cpu=1.0, storage_gb=3.0) for _ in range(3)]
        timing_out = [await _submit(gateway, "sleep", {"seconds": 30}, timeout=1, cpu=1.0) for _ in range(2)]
        cancelled = [
            await _submit(gateway, "sleep", {"seconds": 30}, cpu=0.5, storage_gb=2.0) for _ in range(2)
        ]
        await gateway.wait(cancelled, statuses=("running",), timeout=30)
        for task_id in cancelled:
            await cancel(gateway.services, "acme", task_id, "accounting test")
        done = await gateway.wait(completing + failing + timing_out + cancelled, timeout=60)
        assert [t.status for t in done] == (
            ["completed"] * len(completing) + ["failed"] * 3 + ["timeout"] * 2 + ["cancelled"] * 2
        )
        await _until(lambda: not _nothing_allocated(gateway.store))

        # A worker dies mid-run: its allocation drops when it is declared dead, and the
        # survivor runs the tasks again.
        doomed_ids = [
            await _submit(gateway, "sleep", {"seconds": 1.5}, cpu=1.0, storage_gb=2.0) for _ in range(3)
        ]
        await gateway.wait(doomed_ids, statuses=("running",), timeout=30)
        dead = next(v for v in list_workers(gateway.store) if v.node_id == first.node_id)
        assert dead.allocated.cpu == 3.0 and dead.allocated.storage_gb == 6.0
        first.kill()

        def released() -> bool:
            view = next(v for v in list_workers(gateway.store) if v.node_id == first.node_id)
            return view.allocated == Resources() and not view.is_active

        await _until(released)
        gateway.pool(threads=8, containers=no_containers)
        survived = await gateway.wait(doomed_ids, timeout=30)
        assert all(t.status == "completed" and t.attempt == 2 for t in survived)
        await _until(lambda: not _nothing_allocated(gateway.store))
    assert sampler.violations == [], sampler.violations[:10]
    assert sampler.samples > 50
    # The worker was really busy (the test could have seen nothing), and never beyond its size.
    assert CORES - 1.0 <= sampler.peak["cpu"] <= CORES
    assert 0 < sampler.peak["storage_gb"] <= STORAGE_GB


async def test_container_tasks_are_accounted_while_they_run(
    make_gateway: Any, container_settings: ContainerSettings
) -> None:
    cluster = short_heartbeats(pools={"cpu": PoolConfig(nodes=1, threads_per_node=6, cpu_cores_per_node=2.0)})
    gateway: Gateway = await make_gateway(cluster=cluster)
    settings = ContainerSettings(
        probe_image=container_settings.probe_image, build_probe_image=False, pull="never", storage_gb=1.0
    )
    gateway.pool(threads=6, containers=settings)
    sampler = Sampler(gateway.store)
    with sampler.sampling():
        ids = [
            (await submit_container(gateway, "sleep 0.5", cpu=cpu, memory_gb=0.0625, storage_gb=0.25)).task_id
            for cpu in (0.5, 1.0, 1.5, 0.5, 1.0, 0.5)
        ]
        failing = (await submit_container(gateway, "exit 2", cpu=1.0, memory_gb=0.0625)).task_id
        slow = (
            await submit_container(gateway, "sleep 60", cpu=0.5, memory_gb=0.0625, timeout_seconds=2)
        ).task_id
        done = await gateway.wait([*ids, failing, slow], timeout=90)
        assert [t.status for t in done] == ["completed"] * len(ids) + ["failed", "timeout"]
        await _until(lambda: not _nothing_allocated(gateway.store))
    assert sampler.violations == [], sampler.violations[:10]
    assert 1.0 <= sampler.peak["cpu"] <= 2.0
    assert 0 < sampler.peak["storage_gb"] <= 1.0
