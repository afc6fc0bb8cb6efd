from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from runtime.store import NodeRecord, Store
from tests.store.helpers import T0


def _node(node_id: str, role: str = "worker", **fields: Any) -> NodeRecord:
    fields.setdefault("status", "active")
    return NodeRecord(node_id=node_id, role=role, address="10.0.1.20:4100", started_at=T0, **fields)


def test_registered_nodes_are_listed_and_filtered(store: Store) -> None:
    worker = _node(
        "grey-worker-1",
        pool="gpu",
        resources={"cpu_cores": 16, "memory_gb": 64, "gpus": 1},
        info={"gpus": [{"name": "emulated"}]},
        tee_enabled=True,
    )
    gateway = _node("grey-gateway-0", role="gateway", is_leader=True)
    store.nodes.upsert(worker)
    store.nodes.upsert(gateway)
    assert store.nodes.list() == [gateway, worker]
    assert store.nodes.list(role="worker") == [worker]
    assert store.nodes.list(status="draining") == []
    assert store.nodes.get("grey-worker-1") == worker


def test_registering_again_replaces_the_row(store: Store) -> None:
    store.nodes.upsert(_node("w1", status="down"))
    again = _node("w1", pool="cpu", tasks_running=0)
    restarted = replace(again, started_at=T0 + timedelta(hours=1))
    store.nodes.upsert(restarted)
    assert store.nodes.list() == [restarted]


def test_heartbeat_updates_the_node_and_reports_its_status(store: Store) -> None:
    store.nodes.upsert(_node("w1"))
    beat = T0 + timedelta(seconds=5)
    assert store.nodes.heartbeat("w1", beat, tasks_running=3, info={"load": 0.5}) == "active"
    node = store.nodes.get("w1")
    assert node is not None
    assert (node.last_heartbeat, node.tasks_running, node.info) == (beat, 3, {"load": 0.5})
    assert store.nodes.heartbeat("unknown", beat, tasks_running=0) is None


def test_set_status_changes_a_known_node_only(store: Store) -> None:
    store.nodes.upsert(_node("w1"))
    assert store.nodes.set_status("w1", "draining")
    assert not store.nodes.set_status("w2", "draining")
    assert [node.node_id for node in store.nodes.list(status="draining")] == ["w1"]


def test_mark_stale_down_marks_silent_nodes_once(store: Store) -> None:
    for node_id in ("fresh", "stale", "silent", "already-down"):
        store.nodes.upsert(_node(node_id))
    store.nodes.heartbeat("fresh", T0 + timedelta(seconds=50), 0)
    store.nodes.heartbeat("stale", T0 + timedelta(seconds=10), 0)
    store.nodes.heartbeat("already-down", T0 + timedelta(seconds=10), 0)
    store.nodes.set_status("already-down", "down")  # "silent" never beat: counts from start

    cutoff = T0 + timedelta(seconds=30)
    assert store.nodes.mark_stale_down(cutoff) == ["silent", "stale"]
    assert store.nodes.mark_stale_down(cutoff) == []
    assert [node.node_id for node in store.nodes.list(status="active")] == ["fresh"]
    assert store.nodes.heartbeat("stale", cutoff, 0) == "down"  # it must register again
