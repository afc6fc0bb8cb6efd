"""Placement fixtures: a store, placement nodes on it, a generated safetensors checkpoint
and a local HTTP server that serves it (no model hub is reachable here)."""

from __future__ import annotations

import functools
import hashlib
import json
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.execution.placement import peers
from runtime.execution.placement.boot import start_placement
from runtime.execution.placement.node import PlacementNode
from runtime.execution.placement.settings import PlacementSettings
from runtime.store import Store
from runtime.store.coltypes import utc_now
from runtime.store.placement import ModelRecord, PlacementRepository


def write_checkpoint(path: Path, floats: int = 256 * 1024, seed: int = 7) -> bytes:
    """A real safetensors file: one float32 tensor `weight` of `floats` values."""
    data = np.random.default_rng(seed).standard_normal(floats).astype("<f4").tobytes()
    header = {"weight": {"dtype": "F32", "shape": [floats], "data_offsets": [0, len(data)]}}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    blob = struct.pack("<Q", len(raw)) + raw + data
    path.write_bytes(blob)
    return blob


@dataclass
class Checkpoint:
    path: Path
    blob: bytes
    url: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.blob).hexdigest()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Callable[[str, int], Checkpoint]]:
    """`make(name, floats)`: a checkpoint written under tmp/models and its http:// URL."""
    root = tmp_path / "models"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def make(name: str = "tiny.safetensors", floats: int = 256 * 1024) -> Checkpoint:
        path = root / name
        blob = write_checkpoint(path, floats)
        return Checkpoint(path, blob, f"http://127.0.0.1:{server.server_address[1]}/{name}")

    yield make
    server.shutdown()
    server.server_close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'placement.db'}") as opened:
        yield opened


@pytest.fixture
def repo(store: Store) -> PlacementRepository:
    return PlacementRepository.of(store.engine)


@pytest.fixture
def make_node(store: Store, tmp_path: Path) -> Iterator[Callable[..., PlacementNode]]:
    """Starts placement nodes on the test's store; each stopped at the end."""
    started: list[PlacementNode] = []

    def make(node_id: str = "node1", **changes: Any) -> PlacementNode:
        settings = PlacementSettings(
            root=tmp_path / "placement",
            dram_bytes=changes.pop("dram_bytes", 64 * 1024 * 1024),
            gpu_bytes=changes.pop("gpu_bytes", 64 * 1024 * 1024),
            file_roots=(tmp_path.resolve(),),
            probe_bytes=changes.pop("probe_bytes", 0),
            **changes,
        )
        node = start_placement(store.engine, node_id, settings)
        started.append(node)
        return node

    yield make
    for node in started:
        node.stop()
    peers.forget()


def register(repo: PlacementRepository, name: str = "tiny", tenant: str = "acme", **meta: Any) -> ModelRecord:
    now = utc_now()
    return repo.register_model(
        ModelRecord(tenant, name, "llm", None, None, dict(meta), "registered", None, None, now, now)
    )
