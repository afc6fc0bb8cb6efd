"""Engine factory: one place that knows how SQLite and PostgreSQL must be tuned.

The store is called synchronously from the gateway's thread pool and from Dramatiq
worker threads, so every engine here is thread-safe and pooled.
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

_SQLITE_MEMORY = {None, "", ":memory:"}


def normalise_url(url: str | URL) -> URL:
    """`postgres://` and `postgresql://` mean psycopg 3: psycopg2 is not installed."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_store_engine(url: str | URL) -> Engine:
    """Build the engine for a store URL (SQLite file, `sqlite://` memory, PostgreSQL).

    `hide_parameters`: statement parameters hold secrets (webhook secrets, key hashes), and
    SQLAlchemy would otherwise echo them in every error message that reaches a log.
    """
    parsed = normalise_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        return create_engine(
            parsed,
            pool_size=10,
            max_overflow=20,
            pool_pre_ping=True,
            pool_recycle=1800,
            hide_parameters=True,
        )
    raise ValueError(f"unsupported store URL {parsed.render_as_string(hide_password=True)!r}")


def _sqlite_engine(url: URL) -> Engine:
    memory = url.database in _SQLITE_MEMORY
    if memory:
        # One shared connection, or every checkout would see its own empty database.
        engine = create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}, hide_parameters=True
        )
    else:
        Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, hide_parameters=True)

    _serialize_writes(engine, None if memory else Path(str(url.database)))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                # WAL: readers never block the writer; NORMAL is durable across
                # application crashes (only an OS crash may lose the last commits).
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            # Writers from several threads/processes wait instead of failing at once.
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    return engine


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


class WriteLock:
    """One write transaction at a time, queued in Python and (SQLite files) across processes.

    SQLite allows one writer; a second one waits in SQLite's busy handler, which sleeps in
    steps of 1, 2, 5, 10 ... 100 ms and retries. Writers from several threads or processes
    (gateway inserts, worker transitions) then spend their time asleep while the file is
    free (and a starved heartbeat can time out). Queuing them costs nothing: SQLite would
    have run them one by one anyway. Within a process they queue on a lock; between
    processes on an `flock` of a file beside the database, which the kernel hands to the
    next waiter the moment it is released. Re-entrant within a thread. Reads are not
    affected. The busy handler stays as the fallback for writes this lock does not see.
    """

    def __init__(self, database: Path | None) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        if database is not None:
            try:
                self._fd = os.open(f"{database}-writelock", os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                self._fd = None  # unwritable directory: the busy handler alone
            else:
                weakref.finalize(self, os.close, self._fd)

    def acquire(self) -> None:
        self._lock.acquire()
        self._depth += 1
        if self._depth == 1 and self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._depth -= 1
                self._lock.release()
                raise

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, WriteLock] = weakref.WeakKeyDictionary()


def write_lock(engine: Engine) -> AbstractContextManager[object]:
    """The lock a write transaction on `engine` must hold outside `Connection.execute`
    (none for PostgreSQL: concurrent writers are the database's business)."""
    return _WRITE_LOCKS.get(engine) or nullcontext()


def _serialize_writes(engine: Engine, database: Path | None) -> None:
    """Every write transaction through `Connection.execute` takes the engine's WriteLock."""
    lock = _WRITE_LOCKS[engine] = WriteLock(database)

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not conn.info.get("grey_write_lock") and statement.lstrip()[:7].upper().startswith(_WRITES):
            lock.acquire()
            conn.info["grey_write_lock"] = True

    def _release(conn: Any) -> None:
        if conn.info.pop("grey_write_lock", False):
            lock.release()

    event.listen(engine, "commit", _release)
    event.listen(engine, "rollback", _release)
