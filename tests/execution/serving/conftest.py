"""Serving fixtures: a store with the services table, a generated checkpoint, and a serving
host (replica processes are stopped at the end)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.execution.serving.checkpoint import make_checkpoint
from runtime.execution.serving.host import ServingHost
from runtime.execution.serving.settings import ServingSettings
from runtime.store import Store
from runtime.store.model_services import ModelServiceRepository

SEED = 11


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'serving.db'}") as opened:
        yield opened


@pytest.fixture
def services_repo(store: Store) -> ModelServiceRepository:
    return ModelServiceRepository.of(store.engine)


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    return make_checkpoint(tmp_path / "tiny.safetensors", 64 * 1024, seed=SEED)


@pytest.fixture
def serving_settings() -> ServingSettings:
    return ServingSettings(ports=(18100, 18199), start_timeout=30.0)


@pytest.fixture
def host(services_repo: ModelServiceRepository, serving_settings: ServingSettings) -> Iterator[ServingHost]:
    made = ServingHost("node1", services_repo, uuid.uuid4().hex, serving_settings)
    made.reconcile()
    yield made
    made.close()
