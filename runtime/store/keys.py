"""API keys: only the sha256 of a key is stored, so a leaked database leaks no keys."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from sqlalchemy import Engine, Row, func, select, update

from runtime.store.coltypes import utc_now
from runtime.store.records import ApiKeyRecord
from runtime.store.schema import api_keys


def _record(row: Row[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(**row._mapping)


class KeyRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(
        self,
        tenant_id: str,
        key_hash: str,
        scopes: Iterable[str],
        description: str | None = None,
    ) -> ApiKeyRecord:
        """Store a key's hash for a tenant; the caller keeps (and shows once) the key."""
        record = ApiKeyRecord(
            key_id=f"key_{secrets.token_hex(8)}",
            tenant_id=tenant_id,
            key_hash=key_hash,
            scopes=list(scopes),
            created_at=utc_now(),
            revoked=False,
            description=description,
        )
        with self._engine.begin() as conn:
            conn.execute(api_keys.insert(), asdict(record))
        return record

    def by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        """The key with this hash, revoked or not: the caller decides what revoked means."""
        with self._engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        return None if row is None else _record(row)

    def by_id(self, key_id: str) -> ApiKeyRecord | None:
        """The key with this id, revoked or not (tokens name the key they came from)."""
        with self._engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
        return None if row is None else _record(row)

    def list(self, tenant_id: str | None = None) -> list[ApiKeyRecord]:
        """Keys, oldest first, of one tenant or of all."""
        stmt = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
        if tenant_id is not None:
            stmt = stmt.where(api_keys.c.tenant_id == tenant_id)
        with self._engine.connect() as conn:
            return [_record(row) for row in conn.execute(stmt)]

    def count(self) -> int:
        """All keys ever added (zero means first start: bootstrap a key)."""
        with self._engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(api_keys)).scalar_one()

    def revoke(self, key_id: str) -> bool:
        """Mark the key revoked; False if there is no such key."""
        stmt = update(api_keys).where(api_keys.c.key_id == key_id).values(revoked=True)
        with self._engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1
