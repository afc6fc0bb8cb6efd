"""Worker views from the store: totals from the node's capacity, allocation from the tasks
running on it, and cluster sums over the active workers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from runtime.services.workers import Resources, WorkerNotFound, cluster_totals, get_worker, list_workers
from runtime.store import NewTask, NodeRecord, Store, TaskLogRecord
from runtime.store.coltypes import utc_now


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as store:
        yield store


def _node(
    store: Store, node_id: str, *, role: str = "worker", status: str = "active", age: float = 0.0, **info: Any
) -> None:
    at = utc_now() - timedelta(seconds=age)
    capacity = {"cpu_cores": 8.0, "memory_gb": 16.0, "storage_gb": 100.0, "gpus": 2}
    store.nodes.upsert(
        NodeRecord(
            node_id=node_id,
            role=role,
            status=status,
            address=f"{node_id}.local",
            started_at=at,
            pool="cpu" if role == "worker" else None,
            last_heartbeat=at,
            resources={"cpu_cores": 2, "memory_gb": 4.0, "gpus": 0},
            info={"capacity": capacity, **info},
        )
    )


def _running(store: Store, node_id: str, tenant: str = "acme", **resources: float) -> str:
    task = store.tasks.insert(
        NewTask(
            tenant_id=tenant, type="container", payload={"image": "x", "command": "true"}, resources=resources
        )
    )
    moved = store.lifecycle.transition(
        task.task_id, from_statuses=("pending",), to_status="running", executed_on=node_id, attempt=1
    )
    assert moved
    return task.task_id


def test_a_worker_shows_what_its_running_tasks_hold(store: Store) -> None:
    _node(store, "w1", containers=True)
    first = _running(store, "w1", cpu=2.0, memory_gb=4.0, storage_gb=20.0, gpu=1)
    second = _running(store, "w1", cpu=0.1, memory_gb=0.2, storage_gb=0.3)
    _running(store, "elsewhere", cpu=4.0)
    view = get_worker(store, "w1")
    assert view.total == Resources(8.0, 16.0, 100.0, 2.0)
    assert view.allocated == Resources(2.1, 4.2, 20.3, 1.0)
    assert view.available == Resources(5.9, 11.8, 79.7, 1.0)
    for name in ("cpu", "memory_gb", "storage_gb", "gpu"):
        parts = (Decimal(str(getattr(r, name))) for r in (view.allocated, view.available))
        assert sum(parts) == Decimal(str(getattr(view.total, name)))
    assert sorted(t.task_id for t in view.running_tasks) == sorted([first, second])
    assert view.containers is True and view.containers_reason is None
    assert view.is_active and view.address == "w1.local"


def test_finished_tasks_hold_nothing(store: Store) -> None:
    _node(store, "w1")
    task_id = _running(store, "w1", cpu=3.0)
    store.lifecycle.transition(task_id, from_statuses=("running",), to_status="completed")
    assert get_worker(store, "w1").allocated == Resources()


def test_workers_are_listed_newest_first_without_gateways_or_long_dead_ones(store: Store) -> None:
    _node(store, "old", age=60)
    _node(store, "new", containers=False, containers_reason="podman is not installed")
    _node(store, "gone-recently", status="down", age=120)
    _node(store, "gone-long-ago", status="down", age=3 * 3600)
    _node(store, "gateway", role="gateway")
    views = list_workers(store)
    assert [v.node_id for v in views] == ["new", "old", "gone-recently"]
    assert views[0].containers is False and views[0].containers_reason == "podman is not installed"
    assert views[2].is_active is False
    with pytest.raises(WorkerNotFound):
        get_worker(store, "gateway")
    with pytest.raises(WorkerNotFound):
        get_worker(store, "nope")


def test_cluster_totals_sum_the_active_workers_and_count_tasks(store: Store) -> None:
    _node(store, "a")
    _node(store, "b")
    _node(store, "down", status="down")
    _running(store, "a", cpu=1.0, memory_gb=2.0)
    _running(store, "b", tenant="other", cpu=0.5, memory_gb=1.0)
    store.tasks.insert(NewTask(tenant_id="acme", type="container", payload={}))
    totals = cluster_totals(store)
    assert (totals.total_workers, totals.active_workers) == (3, 2)
    assert totals.total == Resources(16.0, 32.0, 200.0, 4.0)
    assert totals.allocated == Resources(1.5, 3.0, 0.0, 0.0)
    assert totals.available == Resources(14.5, 29.0, 200.0, 4.0)
    assert totals.tasks_by_status["running"] == 2 and totals.tasks_by_status["pending"] == 1
    assert totals.total_tasks == 3
    mine = cluster_totals(store, tenant_id="acme")
    assert mine.tasks_by_status["running"] == 1 and mine.total_tasks == 2


def test_a_task_log_is_the_tenants_and_a_later_attempt_replaces_an_earlier_one(store: Store) -> None:
    _node(store, "w1")
    task_id = _running(store, "w1")
    store.logs.save(TaskLogRecord(task_id, 2, "second attempt", 14, False, utc_now()))
    store.logs.save(TaskLogRecord(task_id, 1, "first attempt, late", 19, False, utc_now()))
    log = store.logs.get("acme", task_id)
    assert log is not None and log.text == "second attempt" and log.attempt == 2
    assert store.logs.get("other", task_id) is None
    store.logs.save(TaskLogRecord(task_id, 3, "third", 5, True, utc_now()))
    log = store.logs.get(None, task_id)
    assert log is not None and log.text == "third" and log.truncated
