"""Moves and copies between disk, DRAM and (emulated) GPU memory on one node."""

from __future__ import annotations

import time
from typing import Any

import pytest

from runtime.execution.placement import operations, peers
from runtime.execution.placement.devices import Key
from runtime.execution.placement.errors import NotOnDevice, ResourceUnavailable
from runtime.execution.placement.names import Place
from runtime.store.placement import PlacementRepository
from tests.execution.placement.conftest import register

KEY = Key("acme", "model", "tiny")


def _downloaded(
    make_node: Any, repo: PlacementRepository, served: Any, floats: int = 256 * 1024, **node: Any
) -> Any:
    placement = make_node(**node)
    checkpoint = served(floats=floats)
    register(repo)
    operations.download(placement, "acme", "tiny", checkpoint.url, "disk")
    return placement, checkpoint


def _places(repo: PlacementRepository) -> list[str]:
    return sorted(row.place for row in repo.locations("acme", "model"))


def test_move_disk_to_dram_moves_the_bytes_and_the_location(
    make_node: Any, repo: PlacementRepository, served: Any
) -> None:
    node, checkpoint = _downloaded(make_node, repo, served)
    operations.transfer(
        node, "acme", "model", "tiny", Place("node1", "disk"), "dram", keep_source=False, verify_checksum=True
    )
    assert bytes(node.devices["dram"].buffer(KEY)) == checkpoint.blob
    assert not node.disk().has(KEY)
    assert _places(repo) == ["node1:dram"]


def test_copy_with_keep_source_leaves_both_copies(
    make_node: Any, repo: PlacementRepository, served: Any
) -> None:
    node, checkpoint = _downloaded(make_node, repo, served)
    operations.transfer(node, "acme", "model", "tiny", Place("node1", "disk"), "gpu0", keep_source=True)
    assert node.disk().path(KEY).read_bytes() == checkpoint.blob
    assert bytes(node.devices["gpu0"].buffer(KEY)) == checkpoint.blob
    assert _places(repo) == ["node1:disk", "node1:gpu0"]
    [gpu] = [row for row in repo.locations("acme", "model") if row.device == "gpu0"]
    assert gpu.emulated and gpu.bytes_per_second and gpu.holder == node.boot_id


def test_dram_back_to_disk_round_trips(make_node: Any, repo: PlacementRepository, served: Any) -> None:
    node, checkpoint = _downloaded(make_node, repo, served)
    operations.transfer(node, "acme", "model", "tiny", Place("node1", "disk"), "dram", keep_source=False)
    operations.transfer(
        node, "acme", "model", "tiny", Place("node1", "dram"), "disk", keep_source=False, verify_checksum=True
    )
    assert node.disk().path(KEY).read_bytes() == checkpoint.blob
    assert _places(repo) == ["node1:disk"] and node.devices["dram"].used() == 0


def test_a_move_that_does_not_fit_is_refused_and_keeps_the_source(
    make_node: Any, repo: PlacementRepository, served: Any
) -> None:
    node, checkpoint = _downloaded(make_node, repo, served, gpu_bytes=1024)
    with pytest.raises(ResourceUnavailable) as refused:
        operations.transfer(node, "acme", "model", "tiny", Place("node1", "disk"), "gpu0", keep_source=False)
    assert refused.value.details["required"] == len(checkpoint.blob)
    assert node.disk().path(KEY).read_bytes() == checkpoint.blob
    assert _places(repo) == ["node1:disk"] and node.devices["gpu0"].used() == 0


def test_moving_what_is_not_on_the_source_device_fails(
    make_node: Any, repo: PlacementRepository, served: Any
) -> None:
    node, _ = _downloaded(make_node, repo, served)
    with pytest.raises(NotOnDevice):
        operations.transfer(node, "acme", "model", "tiny", Place("node1", "dram"), "gpu0", keep_source=False)


def test_bandwidth_limit_slows_the_copy_to_about_the_limit(
    make_node: Any, repo: PlacementRepository, served: Any
) -> None:
    node, checkpoint = _downloaded(make_node, repo, served, floats=512 * 1024)  # 2 MiB
    size = len(checkpoint.blob)
    started = time.perf_counter()
    operations.transfer(node, "acme", "model", "tiny", Place("node1", "disk"), "dram", keep_source=True)
    free = time.perf_counter() - started
    limit = size / 1.0  # one second's worth
    started = time.perf_counter()
    result = operations.transfer(
        node, "acme", "model", "tiny", Place("node1", "disk"), "gpu0", keep_source=True, bandwidth_limit=limit
    )
    limited = time.perf_counter() - started
    assert limited >= 0.9 and limited > 5 * free
    assert result["bytes_per_second"] <= limit * 1.05


def test_a_repeated_move_after_it_completed_is_done_not_redone(
    make_node: Any, repo: PlacementRepository, served: Any
) -> None:
    node, _ = _downloaded(make_node, repo, served)
    operations.transfer(node, "acme", "model", "tiny", Place("node1", "disk"), "dram", keep_source=True)
    again = operations.transfer(
        node, "acme", "model", "tiny", Place("node1", "disk"), "dram", keep_source=False
    )
    assert again.get("already_there") is True
    assert _places(repo) == ["node1:dram"]


def test_volatile_locations_of_a_stopped_node_are_not_listed_and_a_restart_reconciles(
    make_node: Any, repo: PlacementRepository, served: Any
) -> None:
    node, _ = _downloaded(make_node, repo, served)
    operations.transfer(node, "acme", "model", "tiny", Place("node1", "disk"), "dram", keep_source=True)
    node.server.stop()  # as if the process died: its byte server stops answering
    peers.forget()
    listed = peers.real(repo.locations("acme", "model"), {n.node_id: n for n in repo.list_nodes()})
    assert [row.place for row in listed] == ["node1:disk"]
    restarted = make_node()
    assert _places(repo) == ["node1:disk"]  # the dead boot's DRAM row is gone
    assert restarted.disk().has(KEY)
