"""Small key/value settings that must be identical in every process (e.g. the JWT secret)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, select

from runtime.store.schema import settings
from runtime.store.upsert import dialect_insert


class SettingsRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, key: str) -> str | None:
        with self._engine.connect() as conn:
            return conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar_one_or_none()

    def get_or_create(self, key: str, factory: Callable[[], str]) -> str:
        """The stored value, or `factory()` stored now; the first writer wins any race.

        Processes starting together may each call `factory`, but all of them return
        the one value that reached the table (INSERT ... ON CONFLICT DO NOTHING).
        """
        existing = self.get(key)
        if existing is not None:
            return existing
        with self._engine.begin() as conn:
            stmt = dialect_insert(conn, settings).values(key=key, value=factory())
            conn.execute(stmt.on_conflict_do_nothing(index_elements=[settings.c.key]))
        value = self.get(key)
        if value is None:  # pragma: no cover - only if someone deletes it in between
            raise RuntimeError(f"setting {key!r} vanished right after it was written")
        return value
