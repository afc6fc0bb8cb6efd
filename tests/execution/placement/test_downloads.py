"""Downloads: real bytes from a local HTTP server, SHA-256 checked, located only when complete."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.execution.placement import operations
from runtime.execution.placement.devices import Key
from runtime.execution.placement.errors import ChecksumMismatch, SourceNotAllowed
from runtime.store.placement import PlacementRepository
from tests.execution.placement.conftest import register


def test_download_from_http_puts_the_exact_bytes_on_disk_and_locates_them(
    make_node: Any, repo: PlacementRepository, served: Any
) -> None:
    node = make_node()
    checkpoint = served()
    register(repo, sha256=checkpoint.sha256)
    result = operations.download(node, "acme", "tiny", checkpoint.url, "disk")
    path = node.disk().path(Key("acme", "model", "tiny"))
    assert path.read_bytes() == checkpoint.blob
    assert path.name == "tiny.safetensors"
    assert result["sha256"] == checkpoint.sha256 and result["bytes_per_second"] > 0
    [location] = repo.locations("acme", "model")
    assert (location.place, location.size, location.emulated) == ("node1:disk", len(checkpoint.blob), False)
    model = repo.get_model("acme", "tiny")
    assert model is not None and (model.status, model.size, model.sha256) == (
        "ready",
        len(checkpoint.blob),
        checkpoint.sha256,
    )


def test_checksum_mismatch_fails_and_leaves_no_bytes_and_no_location(
    make_node: Any, repo: PlacementRepository, served: Any
) -> None:
    node = make_node()
    checkpoint = served()
    register(repo, sha256="0" * 64)
    with pytest.raises(ChecksumMismatch):
        operations.download(node, "acme", "tiny", checkpoint.url, "dram")
    assert repo.locations("acme", "model") == []
    assert not node.device("dram").has(Key("acme", "model", "tiny"))
    assert node.device("dram").used() == 0  # the reservation is released too
    model = repo.get_model("acme", "tiny")
    assert model is not None and model.status == "failed"


def test_download_without_verify_checksum_records_the_digest_it_computed(
    make_node: Any, repo: PlacementRepository, served: Any
) -> None:
    node = make_node()
    checkpoint = served()
    register(repo, sha256="0" * 64)
    operations.download(node, "acme", "tiny", checkpoint.url, "disk", verify_checksum=False)
    [location] = repo.locations("acme", "model")
    assert location.sha256 == checkpoint.sha256


def test_file_url_inside_the_allowed_roots_downloads(
    make_node: Any, repo: PlacementRepository, served: Any
) -> None:
    node = make_node()
    checkpoint = served()
    register(repo)
    operations.download(node, "acme", "tiny", checkpoint.path.as_uri(), "gpu0")
    [location] = repo.locations("acme", "model")
    assert location.place == "node1:gpu0" and location.emulated is True


@pytest.mark.parametrize("url", ["file:///etc/passwd", "file:///tmp/../etc/passwd", "ftp://example.com/x"])
def test_sources_outside_the_allow_list_are_refused(
    make_node: Any, repo: PlacementRepository, url: str
) -> None:
    node = make_node()
    register(repo)
    with pytest.raises(SourceNotAllowed):
        operations.download(node, "acme", "tiny", url, "disk")
    assert repo.locations("acme", "model") == []
