"""A store real threads share (SQLite file, or the session's PostgreSQL emptied) and its profiler."""

from __future__ import annotations

import pytest

from runtime.store import Store
from runtime.store.profiler import ProfilerRepository


@pytest.fixture
def store(threaded_store: Store) -> Store:
    """Threads share it: see `threaded_store` in tests/conftest.py."""
    return threaded_store


@pytest.fixture
def repository(store: Store) -> ProfilerRepository:
    return ProfilerRepository.of(store.engine)
