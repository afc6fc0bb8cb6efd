"""Per-tenant quotas: a row only once an admin changed something; defaults otherwise."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, select

from runtime.store.coltypes import utc_now
from runtime.store.records import DEFAULT_QUOTAS, QuotaRecord
from runtime.store.schema import quotas
from runtime.store.upsert import dialect_insert


class QuotaRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, tenant_id: str) -> QuotaRecord:
        """The tenant's quotas; DEFAULT_QUOTAS when none were ever set."""
        with self._engine.connect() as conn:
            row = conn.execute(select(quotas).where(quotas.c.tenant_id == tenant_id)).first()
        return QuotaRecord.defaults(tenant_id) if row is None else QuotaRecord(**row._mapping)

    def update(self, tenant_id: str, changes: Mapping[str, int], reason: str) -> QuotaRecord:
        """Change some limits (the others keep their value or default); atomic upsert."""
        unknown = changes.keys() - DEFAULT_QUOTAS.keys()
        if unknown:
            raise ValueError(f"unknown quota fields {sorted(unknown)}")
        audit: dict[str, Any] = {"updated_at": utc_now(), "updated_reason": reason}
        with self._engine.begin() as conn:
            insert = dialect_insert(conn, quotas).values(
                tenant_id=tenant_id, **(dict(DEFAULT_QUOTAS) | dict(changes)), **audit
            )
            upsert = insert.on_conflict_do_update(
                index_elements=[quotas.c.tenant_id], set_={**changes, **audit}
            ).returning(*quotas.c)
            row = conn.execute(upsert).one()
        return QuotaRecord(**row._mapping)
