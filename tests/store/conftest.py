"""Store fixtures: every test runs on SQLite and on PostgreSQL (see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.store import Store
from tests.conftest import empty_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """An empty store: in-memory SQLite, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        with Store.open("sqlite://") as memory_store:
            yield memory_store
        return
    shared: Store = request.getfixturevalue("postgres_store")
    empty_store(shared)
    yield shared


@pytest.fixture(params=["sqlite-file", "postgresql"])
def threaded_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store real threads can share (a pooled SQLite file, not the one-connection memory)."""
    if request.param == "sqlite-file":
        with Store.open(f"sqlite:///{tmp_path / 'grey.db'}") as file_store:
            yield file_store
        return
    shared: Store = request.getfixturevalue("postgres_store")
    empty_store(shared)
    yield shared
