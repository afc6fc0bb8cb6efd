"""Copies and moves between two nodes, through the source node's byte server."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest

from runtime.execution.placement import operations
from runtime.execution.placement.devices import Key
from runtime.execution.placement.names import Place
from runtime.store.placement import PlacementRepository
from tests.execution.placement.conftest import register

KEY = Key("acme", "model", "tiny")


def test_copy_from_another_nodes_dram_to_this_nodes_disk(
    make_node: Any, repo: PlacementRepository, served: Any
) -> None:
    one, two = make_node("node1"), make_node("node2")
    checkpoint = served()
    register(repo)
    operations.download(one, "acme", "tiny", checkpoint.url, "dram")
    result = operations.transfer(
        two, "acme", "model", "tiny", Place("node1", "dram"), "disk", keep_source=True, verify_checksum=True
    )
    assert two.disk().path(KEY).read_bytes() == checkpoint.blob
    assert result["location"] == "node2:disk" and result["bytes_per_second"] > 0
    assert sorted(r.place for r in repo.locations("acme", "model")) == ["node1:dram", "node2:disk"]


def test_move_across_nodes_removes_the_source_copy(
    make_node: Any, repo: PlacementRepository, served: Any
) -> None:
    one, two = make_node("node1"), make_node("node2")
    checkpoint = served()
    register(repo)
    operations.download(one, "acme", "tiny", checkpoint.url, "disk")
    operations.transfer(two, "acme", "model", "tiny", Place("node1", "disk"), "gpu0", keep_source=False)
    assert bytes(two.devices["gpu0"].buffer(KEY)) == checkpoint.blob
    assert not one.disk().has(KEY)
    assert [r.place for r in repo.locations("acme", "model")] == ["node2:gpu0"]


def test_the_byte_server_serves_ranges_and_refuses_without_its_token(
    make_node: Any, repo: PlacementRepository, served: Any
) -> None:
    one = make_node("node1")
    checkpoint = served()
    register(repo)
    operations.download(one, "acme", "tiny", checkpoint.url, "dram")
    record = repo.get_node("node1")
    assert record is not None
    url = operations.object_url(record, KEY, "dram")
    with urllib.request.urlopen(
        urllib.request.Request(url, headers={operations.TOKEN_HEADER: one.token, "Range": "bytes=8-15"})
    ) as answer:
        assert answer.status == 206 and answer.read() == checkpoint.blob[8:16]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url)
    assert refused.value.code == 403
    traversal = f"{record.address}/objects/acme/model/..%2F..%2Fetc?device=disk"
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(
            urllib.request.Request(traversal, headers={operations.TOKEN_HEADER: one.token})
        )
    assert bad.value.code == 400
