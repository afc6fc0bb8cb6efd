"""Store outcomes the API maps to its own errors (409 duplicate_task, 409 not cancellable...)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError, TimeoutError


class StoreError(Exception):
    """Base of the store's expected failures."""


class DuplicateIdempotencyKey(StoreError):
    """The tenant already submitted a task with this idempotency key."""

    def __init__(self, existing_task_id: str) -> None:
        super().__init__(f"idempotency key already used by {existing_task_id}")
        self.existing_task_id = existing_task_id


class TaskNotCancellable(StoreError):
    """The task has already finished; its status says how."""

    def __init__(self, status: str) -> None:
        super().__init__(f"task is {status}, only pending or running tasks can be cancelled")
        self.status = status


class QueueFull(StoreError):
    """The tenant already has `limit` unfinished (pending + running) tasks: its
    `max_queue_depth` quota. Nothing was stored."""

    def __init__(self, tenant_id: str, limit: int, depth: int) -> None:
        super().__init__(f"tenant {tenant_id} has {depth} unfinished tasks; its max_queue_depth is {limit}")
        self.tenant_id, self.limit, self.depth = tenant_id, limit, depth


class InvalidCursor(StoreError):
    """A listTasks cursor that this store did not produce."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or cannot write now (down, full, read-only, locked)."""


def is_unavailable(error: BaseException) -> bool:
    """True for a fault of the database server or its disk, not of the statement or its data:
    worth waiting for and retrying, never a reason to drop work or answer 500.

    SQLite reports a schema that does not match the code ("no such column", e.g. an old
    database file) as an OperationalError too: that is no outage, and retrying cannot help.
    """
    if _schema_mismatch(error):
        return False
    if _read_only(error):
        return True
    if isinstance(error, StoreUnavailable | OperationalError | DisconnectionError | TimeoutError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    # The drivers' own errors, met outside SQLAlchemy (e.g. LISTEN), and their subclasses
    # (psycopg's AdminShutdown, CannotConnectNow... are OperationalErrors).
    return any(
        kind.__name__ == "OperationalError" and kind.__module__.startswith(("psycopg", "sqlite3"))
        for kind in type(error).__mro__
    )


def _schema_mismatch(error: BaseException) -> bool:
    cause = getattr(error, "orig", None) or error
    return type(cause).__module__.startswith("sqlite3") and str(cause).startswith(
        ("no such column", "no such table", "table ", "has no column")
    )


#: SQLSTATE of a write refused because the database or transaction is read-only.
_READ_ONLY_SQLSTATE = "25006"


def _read_only(error: BaseException) -> bool:
    """A store that cannot write now (a read-only replica or database, a read-only file)."""
    cause = getattr(error, "orig", None) or error
    if getattr(cause, "sqlstate", None) == _READ_ONLY_SQLSTATE:
        return True
    return type(cause).__module__.startswith("sqlite3") and "readonly database" in str(cause)
