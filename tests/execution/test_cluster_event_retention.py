"""The coordinator keeps the cluster-event sequence (what /ws/telemetry replays) bounded: it
prunes it at most once a minute, by count and by age."""

from __future__ import annotations

import pytest
from dramatiq.brokers.stub import StubBroker

import runtime.store.cluster_events as cluster_events
from runtime.config import HeartbeatConfig, RetentionConfig
from runtime.execution.actors import Dispatch
from runtime.execution.brokers import ready_counts
from runtime.execution.reconciler import Reconciler
from runtime.store import NodeRecord, Store
from runtime.store.coltypes import utc_now


def _register(store: Store, node_id: str) -> None:
    store.nodes.upsert(
        NodeRecord(node_id=node_id, role="worker", status="active", address="x", started_at=utc_now())
    )


def test_the_coordinator_prunes_events_older_than_the_retention_once_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cluster_events, "RETENTION_SECONDS", -1.0)  # every event is too old
    broker = StubBroker()
    heartbeat = HeartbeatConfig(interval_seconds=0.1, timeout_seconds=0.3)
    with Store.open("sqlite://") as store:
        # Task retention off: its pass would share the in-memory store's one connection.
        reconciler = Reconciler(
            store,
            Dispatch(broker),
            lambda task: None,
            heartbeat,
            ready=lambda qs: ready_counts(broker, qs),
            retention=RetentionConfig(finished_days="forever"),
        )
        for n in range(3):
            _register(store, f"w-{n}")
        assert len(store.cluster_events.after(0)) == 3
        assert reconciler.tick("node-a")
        assert store.cluster_events.after(0) == []
        _register(store, "w-late")
        assert reconciler.tick("node-a")  # within the minute: not again
        assert [e.node_id for e in store.cluster_events.after(0)] == ["w-late"]
        assert not reconciler.tick("node-b")  # only the coordinator prunes
    broker.close()
