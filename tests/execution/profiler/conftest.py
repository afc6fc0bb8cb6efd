"""A store real threads share (SQLite file, or the session's PostgreSQL emptied) and its profiler."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.store import Store
from runtime.store.profiler import ProfilerRepository
from tests.conftest import empty_store


@pytest.fixture(params=["sqlite-file", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite-file":
        with Store.open(f"sqlite:///{tmp_path / 'grey.db'}") as file_store:
            yield file_store
        return
    shared: Store = request.getfixturevalue("postgres_store")
    empty_store(shared)
    yield shared


@pytest.fixture
def repository(store: Store) -> ProfilerRepository:
    return ProfilerRepository.of(store.engine)
