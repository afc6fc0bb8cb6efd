"""Store errors never echo statement parameters: they hold secrets and reach logs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError

from runtime.store import Store
from runtime.store.schema import api_keys

SECRET = "s3cr3t-webhook-or-key-material"


def _row() -> dict[str, object]:
    return {
        "key_id": "key_dup",
        "tenant_id": "acme",
        "key_hash": SECRET,
        "scopes": ["tasks:read"],
        "created_at": datetime.now(UTC),
        "revoked": False,
        "description": SECRET,
    }


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_failed_statement_does_not_carry_its_parameters(backend: str, tmp_path, request) -> None:
    url: str | URL = f"sqlite:///{tmp_path / 'grey.db'}"
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
    with Store.open(url) as store:
        with store.engine.begin() as conn:
            conn.execute(api_keys.delete().where(api_keys.c.key_id == "key_dup"))
            conn.execute(api_keys.insert(), _row())
        with pytest.raises(IntegrityError) as failed, store.engine.begin() as conn:
            conn.execute(api_keys.insert(), _row())
        assert SECRET not in str(failed.value)
        with store.engine.begin() as conn:
            conn.execute(api_keys.delete().where(api_keys.c.key_id == "key_dup"))
