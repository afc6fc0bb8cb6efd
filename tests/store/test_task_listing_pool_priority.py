"""listTasks filtered by pool and priority (the dashboard's filters): in the query, so a page
is full whatever lies between its matches, and read from one ordered index range each."""

from __future__ import annotations

import pytest

from runtime.store import Store, TaskRecord
from runtime.store.task_listing import TaskFilter, capped_count_query, page_query
from tests.store.helpers import new_task
from tests.store.test_scale_reads import _plan, _sorts, _walks


def _ids(tasks: list[TaskRecord]) -> list[str]:
    return [task.task_id for task in tasks]


def _insert(
    store: Store, specs: list[tuple[str, str]], tenant_id: str = "tenant-a", at: int = 0
) -> list[str]:
    """Tasks (priority, pool) one second apart from `at`, oldest first; ids newest first."""
    made = [
        store.tasks.insert(new_task(tenant_id, at=at + n, priority=priority, pool=pool)).task_id
        for n, (priority, pool) in enumerate(specs)
    ]
    return made[::-1]


def test_pool_and_priority_pages_are_full_and_page_on_by_cursor(store: Store) -> None:
    old_gpu = _insert(store, [("high", "gpu"), ("low", "gpu"), ("high", "gpu")])
    _insert(store, [("normal", "cpu")] * 30, at=10)
    new_gpu = _insert(store, [("high", "gpu")], at=100)
    _insert(store, [("high", "gpu")] * 5, tenant_id="tenant-b", at=200)  # another tenant's

    gpu = new_gpu + old_gpu
    first = store.tasks.list("tenant-a", pool="gpu", limit=3)
    assert _ids(first.tasks) == gpu[:3]
    assert (first.has_more, first.total, first.total_exact) == (True, 4, True)
    rest = store.tasks.list("tenant-a", pool="gpu", limit=3, cursor=first.next_cursor)
    assert (_ids(rest.tasks), rest.has_more) == (gpu[3:], False)

    high_gpu = [task_id for task_id in gpu if task_id != old_gpu[1]]
    assert _ids(store.tasks.list("tenant-a", pool="gpu", priority="high").tasks) == high_gpu
    assert _ids(store.tasks.list("tenant-a", priority="high").tasks) == high_gpu
    assert _ids(store.tasks.list("tenant-a", priority="low", pool="gpu").tasks) == [old_gpu[1]]
    assert store.tasks.list("tenant-a", pool="cpu", limit=5).total == 30
    assert store.tasks.list("tenant-a", pool="tee").tasks == []
    assert store.tasks.list("tenant-b", pool="gpu").total == 5


def test_pool_combines_with_status_type_and_labels(store: Store) -> None:
    [cpu_batch, gpu_batch] = [
        store.tasks.insert(new_task(at=n, pool=pool, type="batch", labels={"team": "a"})).task_id
        for n, pool in enumerate(["cpu", "gpu"])
    ]
    store.tasks.insert(new_task(at=5, pool="gpu", labels={"team": "b"}))
    store.lifecycle.transition(gpu_batch, from_statuses=("pending",), to_status="running")
    assert _ids(store.tasks.list("tenant-a", pool="gpu", type="batch").tasks) == [gpu_batch]
    assert _ids(store.tasks.list("tenant-a", pool="gpu", labels={"team": "a"}).tasks) == [gpu_batch]
    assert _ids(store.tasks.list("tenant-a", pool="cpu", statuses=["pending", "running"]).tasks) == [
        cpu_batch
    ]
    assert store.tasks.list("tenant-a", pool="gpu", statuses=["pending"]).total == 1


FILTERS = {
    "pool": TaskFilter.of("tenant-a", None, None, {}, None, None, pool="gpu"),
    "priority": TaskFilter.of("tenant-a", None, None, {}, None, None, priority="high"),
    "pool and priority": TaskFilter.of("tenant-a", None, None, {}, None, None, priority="high", pool="gpu"),
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_pool_and_priority_read_ordered_index_ranges(store: Store, name: str) -> None:
    _insert(store, [("high", "gpu"), ("low", "cpu")] * 10)
    dialect = store.engine.dialect.name
    wanted = FILTERS[name]
    branches = 1 if wanted.pool and wanted.priority else 4
    for stmt in (page_query(wanted, None, 101), capped_count_query(wanted, 1001)):
        plan = _plan(store, stmt)
        assert _walks(plan, dialect) == [], plan
        assert len(_sorts(plan, dialect)) <= (0 if branches == 1 else branches + 1), plan
        if dialect == "sqlite":
            assert "ix_tasks_tenant_id_pool_priority_created_at_task_id" in " ".join(plan), plan
