"""Hot statements run on a DBAPI connection directly, below SQLAlchemy's execution layer.

Every task costs the store three write transactions (submit, claim, finish) and the
runtime's throughput is bounded by them. SQLAlchemy's `Connection.execute` spends
several times longer building an execution context, processing parameters and wrapping
results than SQLite spends running the statement. The statements here are still built
and compiled by SQLAlchemy, once per dialect, and their values still go through the
column types' own bind and result processors (the same ones `Connection.execute` uses);
only the per-call machinery is skipped. Everything else in the store keeps using
`Connection.execute`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import Select

from runtime.store.engine import write_lock

Processor = Callable[[Any], Any] | None
#: A statement run directly: a write, or a read inside a write transaction (quota counts).
Statement = UpdateBase | Select[Any]


class DirectStatement:
    """One INSERT/UPDATE (or SELECT) compiled for one dialect, with its parameter and result
    processing."""

    def __init__(self, statement: Statement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        names: Sequence[str] = (compiled.positiontup or []) if self.positional else list(compiled.binds)
        self._binds: list[tuple[str, Any, Processor]] = []
        for name in names:
            bind = compiled.binds[name]
            # Constants of the statement (e.g. `status='running'`) carry their value.
            constant = None if bind.required else bind.effective_value
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            self._binds.append((name, constant, processor))
        self._results: list[Processor] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.exported_columns  # the RETURNING columns
        ]

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        processed = []
        try:
            for name, constant, processor in self._binds:
                value = values.get(name, constant)
                processed.append(value if processor is None or value is None else processor(value))
        except Exception as error:  # a value its column type refuses, as Connection.execute says it
            raise StatementError(str(error), self.sql, dict(values), error) from error
        if self.positional:
            return processed
        return {name: value for (name, _, _), value in zip(self._binds, processed, strict=True)}

    def row(self, raw: Sequence[Any] | None) -> tuple[Any, ...] | None:
        if raw is None:
            return None
        return tuple(
            value if processor is None or value is None else processor(value)
            for processor, value in zip(self._results, raw, strict=True)
        )


class DirectStatements:
    """Compiles statements lazily, once each, for one engine's dialect, and runs write
    transactions on one connection of its own (writes are one at a time anyway: SQLite
    has one writer, and the group commit queues them), so no pool checkout per commit."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._compiled: dict[Statement, DirectStatement] = {}
        self._lock = threading.Lock()
        self._connection: PoolProxiedConnection | None = None
        self._pid = 0

    def __getitem__(self, statement: Statement) -> DirectStatement:
        # Keyed by the statement object itself (identity): callers pass module-level or
        # cached statements, so this holds one entry per statement shape.
        compiled = self._compiled.get(statement)
        if compiled is None:
            compiled = self._compiled[statement] = DirectStatement(statement, self.engine.dialect)
        return compiled

    def _writer(self) -> PoolProxiedConnection:
        if self._connection is None or self._pid != os.getpid():  # a forked child connects anew
            self._connection, self._pid = self.engine.raw_connection(), os.getpid()
        return self._connection

    def close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None and self._pid == os.getpid():
                connection.close()  # back to the pool, which the engine's dispose then closes

    @contextmanager
    def transaction(self) -> Iterator[DirectTransaction]:
        """A write transaction: committed on exit, else rolled back."""
        dialect = self.engine.dialect
        with self._lock, write_lock(self.engine):
            connection = self._writer()
            cursor = connection.cursor()
            try:
                yield DirectTransaction(self, cursor)
                connection.commit()
            except dialect.loaded_dbapi.Error as error:
                # As `Connection.execute` would: SQLAlchemy's exception classes (callers
                # catch IntegrityError, retry OperationalError), a dead connection dropped.
                disconnected = dialect.is_disconnect(error, connection.dbapi_connection, cursor)
                if disconnected:
                    connection.invalidate(error)
                    self._connection = None
                else:
                    connection.rollback()
                raise DBAPIError.instance(
                    None, None, error, dialect.loaded_dbapi.Error, connection_invalidated=disconnected
                ) from error
            except BaseException:
                connection.rollback()
                raise
            finally:
                cursor.close()


class DirectTransaction:
    def __init__(self, statements: DirectStatements, cursor: Any) -> None:
        self._statements, self._cursor = statements, cursor
        self._once: set[Statement] = set()

    @property
    def dialect(self) -> str:
        return self._statements.engine.dialect.name

    def once(self, statement: Statement, values: Mapping[str, Any]) -> None:
        """Runs `statement` unless this transaction already ran it: e.g. a transaction-scoped
        lock that each job of a group commit needs, taken once for all of them."""
        if statement not in self._once:
            self.execute(statement, values)
            self._once.add(statement)

    def execute(self, statement: Statement, values: Mapping[str, Any]) -> None:
        compiled = self._statements[statement]
        self._cursor.execute(compiled.sql, compiled.parameters(values))

    def returning(self, statement: Statement, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Runs an INSERT/UPDATE ... RETURNING (or a SELECT); its first row, processed, or None."""
        compiled = self._statements[statement]
        self._cursor.execute(compiled.sql, compiled.parameters(values))
        return compiled.row(self._cursor.fetchone())
