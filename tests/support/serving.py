"""Fixtures for gswarm serving over the APIs: two in-process placement nodes (`node1`,
`node2`) on the test's services, a model `tiny` whose generated checkpoint is on the disk of
the nodes asked for, and every serving process stopped at the end.

A pytest plugin (tests/conftest.py registers it), so every test folder has the fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.execution.placement import operations
from runtime.execution.placement.node import local_node
from runtime.execution.serving.checkpoint import make_checkpoint
from runtime.execution.serving.host import close_hosts
from runtime.execution.workers import PoolOptions
from runtime.gateway.app import Platform
from runtime.services import Services
from runtime.store.coltypes import utc_now
from runtime.store.placement import ModelRecord, PlacementRepository

SEED = 21
NODES = ("node1", "node2")


@pytest.fixture
def serving_nodes(
    every_api: Platform, services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Platform]:
    """The runtime started with placement nodes node1 and node2 (2 serving slots each)."""
    monkeypatch.setenv("GREY_PLACEMENT_ROOT", str(tmp_path / "placement"))
    monkeypatch.setenv("GREY_PLACEMENT_FILE_ROOTS", str(tmp_path))
    monkeypatch.setenv("GREY_PLACEMENT_DRAM_BYTES", str(64 << 20))
    monkeypatch.setenv("GREY_PLACEMENT_GPU_BYTES", str(64 << 20))
    monkeypatch.setenv("GREY_PLACEMENT_PROBE_BYTES", "0")
    monkeypatch.setenv("GREY_SERVING_PORTS", "18200-18299")
    monkeypatch.setenv("GREY_SERVING_SLOTS", "2")
    monkeypatch.setenv("GREY_SERVING_START_TIMEOUT", "60")
    monkeypatch.setenv("GREY_GSWARM_CLIENT_NODE", "node1")
    every_api.start_runtime(worker_threads=2)
    for node_id in NODES:
        services.runtime.start_pool(PoolOptions(threads=2, node_id=node_id, placement_only=True))
    yield every_api
    # The pools first: a deploy still in flight would start a replica after close_hosts, and
    # it would hold its port into the next test.
    services.runtime.stop(grace_seconds=0)
    close_hosts()


@pytest.fixture
def model_on(serving_nodes: Platform, services: Services, tmp_path: Path) -> Callable[..., Path]:
    """`model_on("tiny", "node1", "node2", tenant="acme")`: registers the model and puts its
    checkpoint on those nodes' disks (a real download from file://)."""

    def make(name: str, *nodes: str, tenant: str = "acme", device: str = "disk") -> Path:
        path = make_checkpoint(tmp_path / f"{tenant}-{name}.safetensors", 64 * 1024, seed=SEED)
        repo = PlacementRepository.of(services.store.engine)
        now = utc_now()
        if repo.get_model(tenant, name) is None:
            repo.register_model(
                ModelRecord(tenant, name, "test", None, None, {}, "registered", None, None, now, now)
            )
        for node_id in nodes:
            node = local_node(node_id)
            assert node is not None, f"{node_id} is not running"
            operations.download(node, tenant, name, path.resolve().as_uri(), device)
        return path

    return make
