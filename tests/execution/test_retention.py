"""Retention's schedule: the coordinator deletes expired finished tasks in bounded batches on
a thread of its own; submits keep going while it does; a node without the lease never does."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import bindparam, func, select, update

from runtime.config import HeartbeatConfig, RetentionConfig
from runtime.execution.actors import Dispatch
from runtime.execution.brokers import ready_counts
from runtime.execution.reconciler import Reconciler
from runtime.execution.retention import RetentionSchedule, expiries
from runtime.store import NewTask, Store
from runtime.store.coltypes import utc_now
from runtime.store.schema import tasks

NOW = datetime(2026, 1, 31, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=400)


@pytest.fixture
def store(threaded_store: Store) -> Store:
    """Threads share it: see `threaded_store` in tests/conftest.py."""
    return threaded_store


def _finished(store: Store, count: int, tenant: str = "tenant-a", ended: datetime = LONG_AGO) -> list[str]:
    """`count` completed tasks that ended at `ended`, inserted through the store's submit path."""
    news = [
        NewTask(
            tenant_id=tenant,
            type="stateless",
            payload={"function": "echo", "data": {}},
            labels={"n": str(n)},
            created_at=ended - timedelta(seconds=1),
        )
        for n in range(count)
    ]
    ids = []
    for first in range(0, count, 1000):
        chunk = news[first : first + 1000]
        store.tasks.insert_many(chunk)
        rows = [{"w_id": new.task_id} for new in chunk]
        stmt = update(tasks).where(tasks.c.task_id == bindparam("w_id"))
        with store.engine.begin() as conn:
            conn.execute(stmt.values(status="completed", updated_at=ended, completed_at=ended), rows)
        ids += [new.task_id for new in chunk]
    return ids


def _stored(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(tasks)).scalar_one()


def test_rules_give_each_tenant_its_age_and_keep_forever_tenants() -> None:
    config = RetentionConfig(finished_days=30, tenants={"acme": 7, "vault": "forever"})
    rules = expiries(config, NOW)
    assert [(r.tenant_id, r.before) for r in rules[:-1]] == [("acme", NOW - timedelta(days=7))]
    assert rules[-1].before == NOW - timedelta(days=30)
    assert rules[-1].except_tenants == ("acme", "vault")  # their own rules (or none) apply
    assert expiries(RetentionConfig(finished_days="forever"), NOW) == []


def test_a_pass_deletes_in_batches_per_rule_and_keeps_recent_and_forever_tasks(store: Store) -> None:
    old = _finished(store, 25)
    recent = _finished(store, 3, ended=NOW - timedelta(days=1))
    kept = _finished(store, 4, tenant="vault")
    config = RetentionConfig(
        finished_days=30, tenants={"vault": "forever"}, batch_rows=10, batch_pause_seconds=0
    )
    schedule = RetentionSchedule(store, config, holding=lambda: True, clock=lambda: NOW)
    assert schedule.run_pass() == len(old)
    assert all(store.tasks.get(None, task_id) is None for task_id in old)
    assert all(store.tasks.get(None, task_id) is not None for task_id in recent + kept)


def test_a_pass_stops_after_the_batch_in_which_the_lease_was_lost(store: Store) -> None:
    _finished(store, 30)
    answers = iter([True, False])  # held for the first batch only
    config = RetentionConfig(batch_rows=10, batch_pause_seconds=0)
    schedule = RetentionSchedule(store, config, holding=lambda: next(answers, False), clock=lambda: NOW)
    assert schedule.run_pass() == 10
    assert _stored(store) == 20


def test_submits_keep_flowing_while_a_big_purge_runs(store: Store) -> None:
    _finished(store, 4000)
    config = RetentionConfig(batch_rows=100, batch_pause_seconds=0.005)
    schedule = RetentionSchedule(store, config, holding=lambda: True, clock=lambda: NOW)
    purging = threading.Event()
    waits: list[tuple[float, float]] = []  # (when the submit ended, how long it took)

    def submit_until_done() -> None:
        purging.wait()
        while purging.is_set():
            start = time.perf_counter()
            store.tasks.insert(NewTask(tenant_id="live", type="stateless", payload={"function": "echo"}))
            waits.append((time.perf_counter(), time.perf_counter() - start))

    submitter = threading.Thread(target=submit_until_done)
    submitter.start()
    begun = time.perf_counter()
    purging.set()
    deleted = schedule.run_pass()
    ended = time.perf_counter()
    purging.clear()
    submitter.join()
    during = [wait for at, wait in waits if at < ended]
    assert deleted == 4000
    assert len(during) >= 20, f"only {len(during)} submits in {ended - begun:.2f} s of purging"
    # No submit waited for more than a few batches: the purge never held the store for long.
    assert max(during) < max(0.5, (ended - begun) / 4), (max(during), ended - begun)


def test_only_the_coordinator_starts_passes_and_at_most_every_interval(store: Store) -> None:
    expired = _finished(store, 5, ended=utc_now() - timedelta(days=31))
    broker = StubBroker()
    heartbeat = HeartbeatConfig(interval_seconds=0.1, timeout_seconds=30)
    config = RetentionConfig(finished_days=30, every_seconds=3600)

    dispatch = Dispatch(broker)  # one per broker: it declares the actors

    def reconciler() -> Reconciler:
        return Reconciler(
            store,
            dispatch,
            lambda task: None,
            heartbeat,
            ready=lambda qs: ready_counts(broker, qs),
            retention=config,
        )

    holder, other = reconciler(), reconciler()
    try:
        assert holder.tick("node-a")
        assert not other.tick("node-b")  # the lease is node-a's: node-b starts nothing
        assert other.retention._thread is None
        deadline = time.monotonic() + 10
        while any(store.tasks.get(None, task_id) for task_id in expired) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(store.tasks.get(None, task_id) is None for task_id in expired)
        assert holder.retention.deleted == len(expired)
        assert not holder.retention.poke()  # within the hour: no second pass
    finally:
        holder.retention.stop()
        other.retention.stop()
        broker.close()
