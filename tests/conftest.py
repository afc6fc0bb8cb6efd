"""Fixtures shared by every test folder: the PostgreSQL database of the session.

PostgreSQL: one fresh database per session (`grey_test_<random>`, dropped at the
end) on 127.0.0.1:5432, or on GREY_TEST_POSTGRES_URL. Unreachable: skipped locally,
a failure when CI is set.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from runtime.store import Store
from runtime.store.schema import metadata

pytest_plugins = ["tests.support.platform", "tests.support.containers", "tests.support.serving"]

ADMIN_URL = os.environ.get("GREY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[URL]:
    """A database of its own for this session, dropped afterwards."""
    admin_url = make_url(ADMIN_URL)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    name = f"grey_test_{secrets.token_hex(6)}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        where = f"{admin_url.host}:{admin_url.port}"
        reason = " ".join(str(exc.orig).split())
        message = f"PostgreSQL at {where} is missing ({reason}); tests need it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield admin_url.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_store(postgres_url: URL) -> Iterator[Store]:
    store = Store.open(postgres_url)
    yield store
    store.dispose()


def empty_store(store: Store) -> None:
    """Deletes every row, keeping the tables (faster than dropping them)."""
    with store.engine.begin() as conn:
        tables = ", ".join(table.name for table in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))


@pytest.fixture(params=["sqlite-file", "postgresql"])
def threaded_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store real threads can share: a pooled SQLite file (not the one-connection memory
    database), or the session's PostgreSQL database emptied."""
    if request.param == "sqlite-file":
        with Store.open(f"sqlite:///{tmp_path / 'grey.db'}") as file_store:
            yield file_store
        return
    shared: Store = request.getfixturevalue("postgres_store")
    empty_store(shared)
    yield shared
