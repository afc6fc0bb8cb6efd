"""Engine factory: one place that knows how SQLite and PostgreSQL must be tuned.

The store is called synchronously from the gateway's thread pool and from Dramatiq
worker threads, so every engine here is thread-safe and pooled.
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
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
    """Build the engine for a store URL (SQLite file, `sqlite://` memory, PostgreSQL)."""
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
        )
    raise ValueError(f"unsupported store URL {parsed.render_as_string(hide_password=True)!r}")


def _sqlite_engine(url: URL) -> Engine:
    memory = url.database in _SQLITE_MEMORY
    if memory:
        # One shared connection, or every checkout would see its own empty database.
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})

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


def _serialize_writes(engine: Engine, database: Path | None) -> None:
    """One write transaction at a time, queued in Python and (SQLite files) across processes.

    SQLite allows one writer; a second one waits in SQLite's busy handler, which sleeps in
    steps of 1, 2, 5, 10 ... 100 ms and retries. Writers from several threads or processes
    (gateway inserts, worker transitions) then spend their time asleep while the file is
    free (and a starved heartbeat can time out). Queuing them costs nothing: SQLite would
    have run them one by one anyway. Within a process they queue on a lock; between
    processes on an `flock` of a file beside the database, which the kernel hands to the
    next waiter the moment it is released. Reads are not affected. The busy handler stays
    as the fallback for writes this hook does not see.
    """
    lock = threading.RLock()
    depth = [0]
    fd: int | None = None
    if database is not None:
        try:
            fd = os.open(f"{database}-writelock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            fd = None  # unwritable directory: the busy handler alone, as before
        else:
            weakref.finalize(engine, os.close, fd)

    def _acquire() -> None:
        lock.acquire()
        depth[0] += 1
        if depth[0] == 1 and fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                depth[0] -= 1
                lock.release()
                raise

    def _release_lock() -> None:
        depth[0] -= 1
        if depth[0] == 0 and fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        lock.release()

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not conn.info.get("grey_write_lock") and statement.lstrip()[:7].upper().startswith(_WRITES):
            _acquire()
            conn.info["grey_write_lock"] = True

    def _release(conn: Any) -> None:
        if conn.info.pop("grey_write_lock", False):
            _release_lock()

    event.listen(engine, "commit", _release)
    event.listen(engine, "rollback", _release)
