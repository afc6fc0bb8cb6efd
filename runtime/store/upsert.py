"""`INSERT ... ON CONFLICT` for the backend at hand (SQLite and PostgreSQL share the API)."""

from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(conn: Connection, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An insert that supports `on_conflict_do_nothing` / `on_conflict_do_update`."""
    name = conn.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"no upsert for dialect {name!r}")
