from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import StatementError

from runtime.store import Store, create_store_engine
from runtime.store.engine import normalise_url
from tests.store.helpers import new_task


def test_sqlite_file_engine_sets_wal_normal_sync_busy_timeout_and_foreign_keys(
    tmp_path: Path,
) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'nested' / 'grey.db'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 5000
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()
    assert (tmp_path / "nested" / "grey.db").exists()


def test_sqlite_memory_store_is_one_database_seen_from_every_thread() -> None:
    with Store.open("sqlite://") as store:
        task = store.tasks.insert(new_task())
        seen: list[object] = []
        thread = threading.Thread(target=lambda: seen.append(store.tasks.get(None, task.task_id)))
        thread.start()
        thread.join()
        assert seen == [task]


def test_sqlite_memory_store_enforces_foreign_keys() -> None:
    with Store.open("sqlite://") as store, store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgres://u@h/db"])
def test_postgres_url_without_driver_means_psycopg(url: str) -> None:
    assert normalise_url(url).drivername == "postgresql+psycopg"


def test_unsupported_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported store URL"):
        create_store_engine("mysql+pymysql://u:secret@h/db")


def test_opening_an_existing_database_keeps_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'grey.db'}"
    with Store.open(url) as store:
        task = store.tasks.insert(new_task())
    with Store.open(url) as store:
        assert store.tasks.get(None, task.task_id) == task


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        store.tasks.insert(new_task(created_at=datetime(2024, 1, 15, 10, 30)))


def test_datetimes_with_an_offset_come_back_as_the_same_instant_in_utc(store: Store) -> None:
    paris = timezone(timedelta(hours=2))
    created = datetime(2024, 1, 15, 12, 30, 0, 123456, tzinfo=paris)
    task = store.tasks.insert(new_task(created_at=created))
    stored = store.tasks.get(None, task.task_id)
    assert stored is not None
    assert stored.created_at == created
    assert stored.created_at.utcoffset() == timedelta(0)
    assert stored.created_at.microsecond == 123456


def test_writers_of_two_engines_on_one_file_queue_on_the_lock_file(tmp_path: Path) -> None:
    """Two processes (here two engines) never meet in SQLite's sleeping busy handler."""
    import time

    url = f"sqlite:///{tmp_path / 'grey.db'}"
    first, second = create_store_engine(url), create_store_engine(url)
    with first.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    assert (tmp_path / "grey.db-writelock").exists()
    order: list[str] = []

    def write_second() -> None:
        with second.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))
        order.append("second")

    with first.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        thread = threading.Thread(target=write_second)
        thread.start()
        time.sleep(0.2)
        order.append("first")
    thread.join(timeout=5)
    assert order == ["first", "second"]
    with first.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 2
    first.dispose()
    second.dispose()
