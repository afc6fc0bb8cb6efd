"""The store's quota checks under races, as between worker and gateway processes: each
racer has a Store of its own (its own engine, write connection and group commit) on one
SQLite file or one PostgreSQL database, and they all go at once.

- claims: of many pending tasks of one tenant, exactly as many start as its quotas allow;
- submits: of many concurrent inserts, exactly `max_queue_depth` are stored, batches with
  several tenants in opposite orders included (no deadlock on PostgreSQL).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.store import NewTask, Store, TaskRecord
from runtime.store.coltypes import utc_now
from runtime.store.errors import QueueFull
from tests.conftest import empty_store

RACERS = 6


@pytest.fixture(params=["sqlite-file", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Store]]:
    """RACERS stores on one database, as RACERS processes would have."""
    if request.param == "sqlite-file":
        url = f"sqlite:///{tmp_path / 'grey.db'}"
    else:
        empty_store(request.getfixturevalue("postgres_store"))
        url = request.getfixturevalue("postgres_url").render_as_string(hide_password=False)
    opened = [Store.open(url) for _ in range(RACERS)]
    yield opened
    for store in opened:
        store.dispose()


def race(work: Callable[[int], Any], racers: int = RACERS) -> list[Any]:
    """`work(i)` in `racers` threads released at once; what each returned."""
    start = threading.Barrier(racers)
    results: list[Any] = [None] * racers

    def run(index: int) -> None:
        start.wait()
        results[index] = work(index)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a racer is stuck (deadlock?)"
    return results


def pending(store: Store, tenant: str, count: int, **resources: float) -> list[TaskRecord]:
    news = [
        NewTask(tenant_id=tenant, type="stateless", payload={}, resources=resources) for _ in range(count)
    ]
    stored = store.tasks.insert_many(news)
    assert all(isinstance(task, TaskRecord) for task in stored)
    return stored  # type: ignore[return-value]


def claim_each(store: Store, tasks: list[TaskRecord], checked: bool) -> int:
    """Claims these tasks one by one, as a worker's threads would; how many it got. `checked`:
    the path that reads the task first (`transition`), else the one-statement claim."""
    got = 0
    for task in tasks:
        now = utc_now()
        if checked:
            got += store.lifecycle.transition(
                task.task_id,
                from_statuses=("pending",),
                to_status="running",
                match={"attempt": 0},
                attempt=1,
                started_at=now,
                within_quota=True,
            )
        else:
            got += store.lifecycle.claim(task.task_id, node_id="n", now=now, queue_time_ms=0) is not None
    return got


@pytest.mark.parametrize("checked", [False, True], ids=["claim", "transition"])
def test_racing_claims_start_exactly_max_concurrent_tasks(stores: list[Store], checked: bool) -> None:
    stores[0].quotas.update("acme", {"max_concurrent_tasks": 3}, "test")
    tasks = pending(stores[0], "acme", RACERS * 4)
    shares = [tasks[i::RACERS] for i in range(RACERS)]
    got = race(lambda i: claim_each(stores[i], shares[i], checked))
    assert sum(got) == 3
    assert stores[0].figures.tenant_usage("acme").running == 3


def test_racing_claims_keep_cpu_and_memory_within_quota(stores: list[Store]) -> None:
    stores[0].quotas.update("acme", {"cpu_cores": 5, "memory_gb": 100}, "test")
    stores[0].quotas.update("globex", {"cpu_cores": 100, "memory_gb": 2}, "test")
    cpu_heavy = pending(stores[0], "acme", RACERS * 2, cpu=2)
    memory_heavy = pending(stores[0], "globex", RACERS * 2, cpu=0.1, memory_gb=0.75)
    got = race(lambda i: claim_each(stores[i], cpu_heavy[i::RACERS] + memory_heavy[i::RACERS], False))
    acme, globex = stores[0].figures.tenant_usage("acme"), stores[0].figures.tenant_usage("globex")
    assert (acme.running, acme.cpu) == (2, 4.0)  # a third 2-core task would make 6 > 5
    assert (globex.running, globex.memory_gb) == (2, 1.5)  # a third would make 2.25 > 2
    assert sum(got) == 4


def test_one_tenants_full_quota_never_holds_back_another(stores: list[Store]) -> None:
    stores[0].quotas.update("acme", {"max_concurrent_tasks": 1}, "test")
    acme = pending(stores[0], "acme", RACERS)
    globex = pending(stores[0], "globex", RACERS)
    got = race(lambda i: claim_each(stores[i], [acme[i], globex[i]], False))
    assert sum(got) == 1 + RACERS
    assert stores[0].figures.tenant_usage("globex").running == RACERS


def test_racing_submits_store_exactly_max_queue_depth(stores: list[Store]) -> None:
    stores[0].quotas.update("acme", {"max_queue_depth": 7}, "test")
    stores[0].quotas.update("globex", {"max_queue_depth": 4}, "test")

    def submit(index: int) -> list[TaskRecord | Exception]:
        # Batches mix the two tenants, in opposite orders on alternate racers.
        tenants = ["acme", "globex"] if index % 2 else ["globex", "acme"]
        news = [
            NewTask(tenant_id=tenant, type="stateless", payload={}) for tenant in tenants for _ in range(3)
        ]
        return stores[index].tasks.insert_many(news)

    outcomes = [outcome for batch in race(submit) for outcome in batch]
    stored = [outcome for outcome in outcomes if isinstance(outcome, TaskRecord)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, QueueFull)]
    assert len(stored) + len(refused) == len(outcomes)
    assert sorted(task.tenant_id for task in stored) == ["acme"] * 7 + ["globex"] * 4
    counts = {tenant: stores[0].figures.count_by_status(tenant)["pending"] for tenant in ("acme", "globex")}
    assert counts == {"acme": 7, "globex": 4}
    assert {error.limit for error in refused if error.tenant_id == "acme"} == {7}
