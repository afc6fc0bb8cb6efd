"""Leases in the store: attempt leases on task rows, message send times, and the coordinator
lease (one holder at a time, taken over after expiry). SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from runtime.store import Store
from runtime.store.coltypes import utc_now
from tests.store.helpers import T0, new_task

LEASE = 10.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_claim_leases_its_attempt_and_only_that_running_attempt_is_renewed(store: Store) -> None:
    task = store.tasks.insert(new_task(at=0))
    assert task.sent_at == task.created_at  # the intake sends it right after the insert
    claimed = store.lifecycle.claim(
        task.task_id, node_id="n1", now=at(1), queue_time_ms=1000, lease_expires_at=at(11)
    )
    assert claimed is not None and claimed.lease_expires_at == at(11)
    assert store.scheduling.expired_leases(at(10)) == []
    [expired] = store.scheduling.expired_leases(at(12))
    assert (expired.task_id, expired.attempt) == (task.task_id, 1)

    # One UPDATE for a worker's running attempts: another attempt number is not renewed.
    assert store.lifecycle.renew_leases([(task.task_id, 1), ("task_missing", 1)], at(30)) == 1
    assert store.lifecycle.renew_leases([(task.task_id, 2)], at(60)) == 0
    renewed = store.tasks.get(None, task.task_id)
    assert renewed is not None and renewed.lease_expires_at == at(30)
    assert store.scheduling.expired_leases(at(20)) == []

    # Re-queued by the reconciler only if the lease read is still the lease stored.
    stale_read = {"attempt": 1, "lease_expires_at": at(11)}
    assert not store.lifecycle.transition(
        task.task_id, from_statuses=("running",), to_status="pending", match=stale_read
    )
    current = {"attempt": 1, "lease_expires_at": at(30)}
    assert store.lifecycle.transition(
        task.task_id, from_statuses=("running",), to_status="pending", match=current, sent_at=at(31)
    )
    assert store.lifecycle.renew_leases([(task.task_id, 1)], at(90)) == 0  # no longer running
    assert store.scheduling.expired_leases(at(100)) == []


def test_a_running_task_without_a_lease_counts_as_expired(store: Store) -> None:
    task = store.tasks.insert(new_task(at=0))
    assert store.lifecycle.claim(task.task_id, node_id="n1", now=at(1), queue_time_ms=0) is not None
    assert [t.task_id for t in store.scheduling.expired_leases(at(1))] == [task.task_id]


def test_stale_pending_tasks_are_counted_per_queue_and_listed_sent_longest_ago_first(store: Store) -> None:
    normal = [store.tasks.insert(new_task(at=i)) for i in range(4)]
    urgent = store.tasks.insert(new_task(at=0, priority="critical"))
    gpu = store.tasks.insert(new_task(at=0, pool="gpu"))
    running = store.tasks.insert(new_task(at=0))
    store.lifecycle.claim(running.task_id, node_id="n1", now=at(1), queue_time_ms=0, lease_expires_at=at(9))
    # normal[0] was sent again at 20 s; normal[1] is a delayed retry due at 100 s.
    assert store.lifecycle.mark_sent([normal[0].task_id, running.task_id], at(20)) == 1  # pending only
    assert store.lifecycle.transition(
        normal[1].task_id, from_statuses=("pending",), to_status="pending", sent_at=at(100)
    )

    assert store.scheduling.stale_pending_counts(at(10)) == {
        ("cpu", "normal"): 2,
        ("cpu", "critical"): 1,
        ("gpu", "normal"): 1,
    }
    assert store.scheduling.stale_pending_counts(at(21)) == {
        ("cpu", "normal"): 3,
        ("cpu", "critical"): 1,
        ("gpu", "normal"): 1,
    }
    listed = store.scheduling.stale_pending("cpu", "normal", at(21), limit=10)
    assert [t.task_id for t in listed] == [normal[2].task_id, normal[3].task_id, normal[0].task_id]
    assert [t.task_id for t in store.scheduling.stale_pending("cpu", "normal", at(21), limit=1)] == [
        normal[2].task_id
    ]
    assert [t.task_id for t in store.scheduling.stale_pending("cpu", "critical", at(21), 5)] == [
        urgent.task_id
    ]
    assert [t.task_id for t in store.scheduling.stale_pending("gpu", "normal", at(21), 5)] == [gpu.task_id]
    assert store.scheduling.stale_pending("gpu", "normal", at(0), 5) == []  # sent at 0 s: not before


def test_the_coordinator_lease_has_one_holder_and_passes_on_only_after_it_expires(store: Store) -> None:
    leases = store.coordination
    assert leases.current("reconciler") is None
    first = leases.acquire("reconciler", "node-a", at(0), LEASE)
    assert first is not None and (first.holder, first.term, first.expires_at) == ("node-a", 1, at(10))
    assert leases.acquire("reconciler", "node-b", at(5), LEASE) is None  # held
    renewed = leases.acquire("reconciler", "node-a", at(8), LEASE)  # renewal: same term
    assert renewed is not None and (renewed.term, renewed.expires_at, renewed.acquired_at) == (
        1,
        at(18),
        at(0),
    )
    assert leases.acquire("reconciler", "node-b", at(17), LEASE) is None
    # node-a stops renewing: once its lease has expired, node-b takes over in a new term.
    taken = leases.acquire("reconciler", "node-b", at(19), LEASE)
    assert taken is not None and (taken.holder, taken.term, taken.acquired_at) == ("node-b", 2, at(19))
    assert leases.acquire("reconciler", "node-a", at(20), LEASE) is None
    current = leases.current("reconciler")
    assert current is not None and (current.holder, current.term) == ("node-b", 2)
    # Other names are other leases.
    other = leases.acquire("other", "node-a", at(20), LEASE)
    assert other is not None and other.term == 1
    # A clean stop releases it: the next node need not wait for the expiry.
    assert not leases.release("reconciler", "node-a")
    assert leases.release("reconciler", "node-b")
    after = leases.acquire("reconciler", "node-a", utc_now(), LEASE)
    assert after is not None and (after.holder, after.term) == ("node-a", 3)


def test_nodes_racing_for_an_expired_coordinator_lease_leave_exactly_one_holder(
    threaded_store: Store,
) -> None:
    leases = threaded_store.coordination
    assert leases.acquire("reconciler", "node-old", at(0), LEASE) is not None
    start = threading.Barrier(8)
    won: list[str] = []

    def race(node: str) -> None:
        start.wait()
        if leases.acquire("reconciler", node, at(60), LEASE) is not None:
            won.append(node)

    threads = [threading.Thread(target=race, args=(f"node-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    current = leases.current("reconciler")
    assert current is not None and (current.holder, current.term) == (won[0], 2)
