"""The placement tables: models per tenant, locations written and removed by the engine,
volatile locations of a dead boot, placement nodes, a task's position in its node queue."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta

import pytest

from runtime.execution.queues import DRAMATIQ_PRIORITY
from runtime.store import NewTask, Store
from runtime.store.coltypes import utc_now
from runtime.store.placement import (
    TABLES,
    ChunkRecord,
    LocationRecord,
    ModelExists,
    ModelRecord,
    PlacementNodeRecord,
    PlacementRepository,
    gswarm_task_counts,
)


def _model(name: str, tenant: str = "acme", model_type: str = "llm") -> ModelRecord:
    now = utc_now()
    return ModelRecord(
        tenant, name, model_type, None, None, {"framework": "pytorch"}, "registered", None, None, now, now
    )


def _location(device: str, holder: str | None = None, node: str = "node1", name: str = "m") -> LocationRecord:
    return LocationRecord(
        "acme", "model", name, node, device, "ready", device.startswith("gpu"), 10, holder=holder
    )


def test_each_record_has_exactly_its_tables_columns_in_order() -> None:
    records = (ModelRecord, ChunkRecord, LocationRecord, PlacementNodeRecord)
    for table, record in zip(TABLES, records, strict=True):
        assert [column.name for column in table.columns] == [f.name for f in fields(record)], table.name


def test_records_read_back_as_written(store: Store) -> None:
    repo = PlacementRepository.of(store.engine)
    model = repo.register_model(_model("m"))
    assert repo.get_model("acme", "m") == model
    now = utc_now()
    chunk = ChunkRecord("acme", "c1", "kv", "raw", 4, "ab", {"k": 1}, 0, ["t1"], "me", now)
    repo.create_chunk(chunk)
    assert repo.get_chunk("acme", "c1") == chunk
    assert repo.list_chunks("acme") == [chunk]
    location = _location("gpu0", holder="boot1")
    repo.put_location(location)
    assert repo.get_location("acme", "model", "m", "node1", "gpu0") == location
    assert repo.locations("acme", "model") == [location]


def test_models_are_per_tenant_and_unique_by_name(store: Store) -> None:
    repo = PlacementRepository.of(store.engine)
    repo.register_model(_model("m"))
    repo.register_model(_model("m", tenant="globex"))
    with pytest.raises(ModelExists):
        repo.register_model(_model("m"))
    assert repo.get_model("initech", "m") is None
    repo.register_model(_model("n", model_type="cnn"))
    page, total = repo.list_models("acme", model_type="llm")
    assert ([m.name for m in page], total) == (["m"], 1)
    page, total = repo.list_models("acme", offset=1, limit=1)
    assert ([m.name for m in page], total) == (["n"], 2)


def test_locations_are_upserted_removed_and_deleted_with_their_model(store: Store) -> None:
    repo = PlacementRepository.of(store.engine)
    repo.register_model(_model("m"))
    repo.put_location(_location("disk"))
    repo.put_location(_location("disk"))  # the same copy written again: one row
    repo.put_location(_location("gpu0", holder="boot-1"))
    assert sorted(r.place for r in repo.locations("acme", "model")) == ["node1:disk", "node1:gpu0"]
    assert repo.locations("globex", "model") == []
    assert repo.remove_location("acme", "model", "m", "node1", "gpu0")
    assert not repo.remove_location("acme", "model", "m", "node1", "gpu0")
    assert repo.delete_model("acme", "m")
    assert repo.locations("acme", "model") == []


def test_volatile_locations_of_another_boot_are_removed_disk_ones_stay(store: Store) -> None:
    repo = PlacementRepository.of(store.engine)
    repo.put_location(_location("disk"))
    repo.put_location(_location("dram", holder="boot-old"))
    repo.put_location(_location("gpu0", holder="boot-new", name="n"))
    assert repo.remove_stale_volatile("node1", "boot-new") == 1
    assert sorted(r.place + "/" + r.name for r in repo.locations("acme", "model")) == [
        "node1:disk/m",
        "node1:gpu0/n",
    ]


def test_nodes_beat_only_from_their_current_boot(store: Store) -> None:
    repo = PlacementRepository.of(store.engine)
    now = utc_now()
    record = PlacementNodeRecord(
        "node1", "host", "http://127.0.0.1:1", "t", "boot-1", [], {}, now, now, "online"
    )
    repo.upsert_node(record)
    assert repo.beat("node1", "boot-1", [{"name": "disk", "total": 5}], {"disk_read": 1e9})
    assert not repo.beat("node1", "boot-0", [])
    got = repo.get_node("node1")
    assert (
        got is not None
        and got.devices == [{"name": "disk", "total": 5}]
        and got.bandwidth == {"disk_read": 1e9}
    )


def test_position_counts_running_and_more_urgent_or_older_pending_tasks_of_the_node_queue(
    store: Store,
) -> None:
    repo = PlacementRepository.of(store.engine)
    base = utc_now()

    def task(priority: str, seconds: int, pool: str = "node.node1") -> str:
        new = NewTask(
            "acme",
            "gswarm.move",
            {},
            priority=priority,
            pool=pool,
            created_at=base + timedelta(seconds=seconds),
        )
        return store.tasks.insert(new).task_id

    task("normal", 0)
    task("critical", 5)
    task("normal", 1, pool="node.node2")  # another node's queue
    task("low", 2)
    mine = task("normal", 3)
    assert repo.tasks_ahead("node.node1", DRAMATIQ_PRIORITY, "normal", mine) == 2
    assert gswarm_task_counts(store.engine, "acme") == {"pending": 5}
