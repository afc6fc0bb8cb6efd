"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    SQLite keeps no offset, so values are stored as naive UTC (its fixed-width text
    format then sorts chronologically) and tagged UTC again when read. Naive input is
    refused: a local time silently taken for UTC would corrupt ordering and cursors.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware (UTC) value")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_column_type(*, nullable: bool = False) -> JSON:
    """Plain JSON (not JSONB): keeps the client's key order and skips re-parsing on write.

    Nullable columns store Python None as SQL NULL, so `IS NULL` means "absent".
    """
    return JSON(none_as_null=nullable)


def utc_now() -> datetime:
    """The store's clock: aware UTC, microsecond precision (what both backends keep)."""
    return datetime.now(UTC)


__all__ = ["UtcDateTime", "json_column_type", "utc_now"]
