"""Store fixtures: every test runs on SQLite and on PostgreSQL (see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

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
