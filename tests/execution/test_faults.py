"""Faults with every node alive: store and broker outages, lost running attempts, lost
messages, and the one coordinator that reconciles them (embedded broker and Redis).

The test cluster heartbeats every 0.2 s with a 1 s timeout: leases last 1 s, pending tasks
are sent again after 2 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import dramatiq
import psycopg
import pytest
import redis
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from runtime.config import HeartbeatConfig
from runtime.execution.actors import Dispatch, retry_when
from runtime.execution.brokers import ready_counts
from runtime.execution.reconciler import RECONCILER, Reconciler
from runtime.store import NewTask, Store
from runtime.store.coltypes import utc_now
from tests.conftest import ADMIN_URL, empty_store
from tests.execution.conftest import REDIS_URL, Gateway
from tests.execution.conftest import test_cluster as cluster_with

ECHO: dict[str, Any] = {"payload": {"function": "echo", "data": {"key": "value"}}}
#: Pending tasks are never sent again by the reconciler (to see what retries alone do).
NO_RESEND = HeartbeatConfig(interval_seconds=0.2, timeout_seconds=1.0, resend_after_seconds=3600)


def sleep(seconds: float) -> dict[str, Any]:
    return {"payload": {"function": "sleep", "data": {"seconds": seconds}}}


def outage(error: int) -> BaseException:
    """What a PostgreSQL that refuses connections raises: through SQLAlchemy, or psycopg's own."""
    refused = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
    if error % 2:
        return refused
    return OperationalError("UPDATE tasks SET ...", {}, refused)


def flaky(real: Callable[..., Any], failures: int, when: Callable[..., bool] = lambda *a, **k: True) -> Any:
    """`real`, raising an outage error for its first `failures` calls that `when` picks."""
    calls = {"failed": 0}

    def call(*args: Any, **kwargs: Any) -> Any:
        if calls["failed"] < failures and when(*args, **kwargs):
            calls["failed"] += 1
            raise outage(calls["failed"])
        return real(*args, **kwargs)

    call.calls = calls  # type: ignore[attr-defined]
    return call


# -- 1. outages: wait and retry, never drop ------------------------------------------------


def test_store_and_broker_outages_are_retried_without_limit_and_bugs_are_not() -> None:
    import dramatiq.errors

    for error in (
        OperationalError("SELECT 1", {}, Exception("connection refused")),
        psycopg.OperationalError("connection refused"),
        psycopg.errors.AdminShutdown("terminating connection"),
        psycopg.errors.CannotConnectNow("the database system is starting up"),
        redis.exceptions.ConnectionError("Connection refused"),
        redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        dramatiq.errors.BrokerConnectionError("gone"),
        ConnectionRefusedError(),
    ):
        assert retry_when(0, error) and retry_when(10_000, error), error
    assert retry_when(10_000, dramatiq.Retry("transient failure"))
    for bug in (ValueError("bad"), KeyError("x"), psycopg.errors.UniqueViolation("dup")):
        assert not retry_when(0, bug), bug


async def test_a_store_outage_at_claim_delays_the_task_but_never_drops_its_message(
    make_gateway: Any, broker_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No reconciler re-send to rescue it: only the message's own retries can finish it.
    gateway: Gateway = await make_gateway(broker_url=broker_url, cluster=cluster_with(heartbeat=NO_RESEND))
    lifecycle = gateway.store.lifecycle
    claim = flaky(lifecycle.claim, failures=8)  # the old rule gave up after 5
    monkeypatch.setattr(lifecycle, "claim", claim)
    gateway.pool()
    task_id = (await gateway.submit(**ECHO))["task_id"]
    [task] = await gateway.wait(task_id)
    assert (task.status, task.attempt, task.retry_count) == ("completed", 1, 0)
    assert claim.calls["failed"] == 8


async def test_a_store_outage_at_the_outcome_keeps_the_work_done(
    make_gateway: Any, broker_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway: Gateway = await make_gateway(broker_url=broker_url, cluster=cluster_with(heartbeat=NO_RESEND))
    lifecycle = gateway.store.lifecycle
    completing = flaky(
        lifecycle.transition, failures=4, when=lambda *a, **k: k.get("to_status") == "completed"
    )
    monkeypatch.setattr(lifecycle, "transition", completing)
    gateway.pool()
    task_id = (await gateway.submit(**ECHO))["task_id"]
    [task] = await gateway.wait(task_id)
    # Written again in place: not re-run, not failed.
    assert (task.status, task.attempt, task.result) == ("completed", 1, {"key": "value"})
    assert completing.calls["failed"] == 4


async def test_postgresql_killing_every_connection_mid_run_loses_no_task(
    make_gateway: Any, postgres_url: Any
) -> None:
    with Store.open(postgres_url) as store:
        empty_store(store)
    gateway: Gateway = await make_gateway(database_url=postgres_url.render_as_string(hide_password=False))
    gateway.pool(threads=4)
    ids = [(await gateway.submit(**sleep(0.3)))["task_id"] for _ in range(24)]
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        for _ in range(4):  # what a restarting server does to its clients: AdminShutdown
            await asyncio.sleep(0.3)
            with admin.connect() as conn:
                killed = conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": postgres_url.database},
                ).scalar_one()
            assert killed > 0
    finally:
        admin.dispose()
    done = await gateway.wait(ids, timeout=30)
    assert [t.status for t in done] == ["completed"] * 24


# -- 2. attempt leases ----------------------------------------------------------------------


async def test_a_running_task_whose_lease_expired_on_a_live_node_is_recovered_and_completed(
    gateway: Gateway,
) -> None:
    pool = gateway.pool()
    store = gateway.store
    # Claimed by a live node that then lost it (its worker wedged): no thread runs it, no
    # message carries it, and the node heartbeats on, so the reaper never looks at it.
    task = store.tasks.insert(NewTask(tenant_id="acme", type="stateless", payload=ECHO["payload"]))
    now = utc_now()
    claimed = store.lifecycle.claim(
        task.task_id,
        node_id=pool.node_id,
        now=now,
        queue_time_ms=0,
        lease_expires_at=now + timedelta(seconds=1),
    )
    assert claimed is not None and claimed.attempt == 1
    [done] = await gateway.wait(task.task_id, timeout=10)
    assert (done.status, done.attempt, done.retry_count) == ("completed", 2, 0)
    node = store.nodes.get(pool.node_id)
    assert node is not None and node.status == "active"
    messages = [e.message or "" for e in store.tasks.events_after(task.task_id, 0)]
    assert any(f"lease of attempt 1 on {pool.node_id} expired" in m for m in messages), messages


async def test_a_worker_renews_the_leases_of_the_long_tasks_it_runs(gateway: Gateway) -> None:
    gateway.pool()
    task_id = (await gateway.submit(**sleep(2.5)))["task_id"]  # 2.5 leases
    [running] = await gateway.wait(task_id, ("running",))
    assert running.lease_expires_at is not None
    first_lease = running.lease_expires_at
    await asyncio.sleep(0.6)
    renewed = gateway.record(task_id).lease_expires_at
    assert renewed is not None and renewed > first_lease
    [done] = await gateway.wait(task_id)
    assert (done.status, done.attempt) == ("completed", 1)
    assert not any("lease" in (e.message or "") for e in gateway.store.tasks.events_after(task_id, 0))


def test_a_reconciler_that_lost_the_store_waits_a_lease_before_expiring_any() -> None:
    heartbeat = HeartbeatConfig(interval_seconds=0.1, timeout_seconds=0.3)  # lease 0.3 s
    broker = StubBroker()
    with Store.open("sqlite://") as store:
        reconciler = Reconciler(
            store, Dispatch(broker), lambda task: None, heartbeat, ready=lambda qs: ready_counts(broker, qs)
        )
        task = store.tasks.insert(NewTask(tenant_id="acme", type="stateless", payload=ECHO["payload"]))
        past = utc_now() - timedelta(seconds=5)
        store.lifecycle.claim(task.task_id, node_id="n1", now=past, queue_time_ms=0, lease_expires_at=past)
        assert reconciler.tick("node-a")  # holds the lease, but in contact only since now
        assert store.tasks.get(None, task.task_id).status == "running"  # type: ignore[union-attr]
        time.sleep(0.32)
        assert reconciler.tick("node-a")
        assert store.tasks.get(None, task.task_id).status == "pending"  # type: ignore[union-attr]
        assert broker.queues["cpu.normal"].qsize() == 1  # and sent again
        lease = store.coordination.current(RECONCILER)
        assert lease is not None and (lease.holder, lease.term) == ("node-a", 1)
        assert not reconciler.tick("node-b")  # held by node-a
    broker.close()


# -- 3. pending tasks whose message is gone -----------------------------------------------


def purge(gateway: Gateway) -> None:
    """The broker loses every message (Redis restarted empty; the embedded queues flushed)."""
    broker = gateway.services.runtime.broker
    if isinstance(broker, StubBroker):
        broker.flush_all()
    else:
        redis.Redis.from_url(REDIS_URL).flushdb()


async def test_pending_tasks_whose_messages_were_lost_are_sent_again_within_the_threshold(
    gateway: Gateway,
) -> None:
    ids = [(await gateway.submit(**ECHO))["task_id"] for _ in range(10)]
    purge(gateway)
    purged_at = time.monotonic()
    gateway.pool()
    done = await gateway.wait(ids, timeout=10)
    assert [t.status for t in done] == ["completed"] * 10
    threshold = gateway.services.cluster.heartbeat.pending_resend_seconds
    assert time.monotonic() - purged_at < threshold + 3  # threshold + a few reconcile ticks
    assert all(t.attempt == 1 for t in done)


async def test_a_real_backlog_is_not_sent_twice(gateway: Gateway) -> None:
    ids = [(await gateway.submit(**ECHO))["task_id"] for _ in range(20)]
    sent = {t.task_id: t.sent_at for t in (gateway.record(i) for i in ids)}
    runtime = gateway.services.runtime
    threshold = gateway.services.cluster.heartbeat.pending_resend_seconds
    await asyncio.sleep(threshold + 0.8)  # every task stale, several reconciler passes
    assert ready_counts(runtime.broker, ["cpu.normal"]) == {"cpu.normal": 20}
    assert {i: gateway.record(i).sent_at for i in ids} == sent
    if isinstance(runtime.broker, StubBroker):
        # Five messages lost from the head of the queue: the five sent longest ago go again.
        lost = [runtime.broker.queues["cpu.normal"].get_nowait() for _ in range(5)]
        await asyncio.sleep(0.8)
        assert ready_counts(runtime.broker, ["cpu.normal"]) == {"cpu.normal": 20}
        again = {i for i in ids if gateway.record(i).sent_at != sent[i]}
        assert again == {dramatiq.Message.decode(data).args[0] for data in lost} == set(ids[:5])
    gateway.pool()
    assert [t.status for t in await gateway.wait(ids)] == ["completed"] * 20


# -- 4. one coordinator ---------------------------------------------------------------------


async def test_one_live_node_coordinates_and_another_takes_over_after_it_dies(make_gateway: Any) -> None:
    gateways: list[Gateway] = [await make_gateway(), await make_gateway()]
    runtime = gateways[0].services.runtime
    await asyncio.sleep(0.5)
    lease = runtime.coordinator()
    assert lease is not None
    holder, term = lease.holder, lease.term
    by_node = {g.services.node_id: g for g in gateways}
    assert holder in by_node
    for _ in range(5):  # renewed, never flapping
        await asyncio.sleep(0.2)
        lease = runtime.coordinator()
        assert lease is not None and (lease.holder, lease.term) == (holder, term)
    agent = by_node[holder].services.runtime.agent
    assert agent is not None
    agent.stop(mark_down=False)  # the holder dies: no release, no more renewals
    [survivor] = [node for node in by_node if node != holder]
    deadline = time.monotonic() + gateways[0].services.cluster.heartbeat.lease_seconds + 2
    while True:
        lease = runtime.coordinator()
        assert lease is not None
        if lease.holder == survivor:
            break
        assert time.monotonic() < deadline, f"still held by {lease.holder}"
        await asyncio.sleep(0.1)
    assert lease.term == term + 1
