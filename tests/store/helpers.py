"""Builders shared by the store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from runtime.store import NewTask

T0 = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


def new_task(tenant_id: str = "tenant-a", *, at: int | None = None, **fields: Any) -> NewTask:
    """A stateless task; `at` = seconds after T0 for a deterministic created_at."""
    if at is not None:
        fields["created_at"] = T0 + timedelta(seconds=at)
    fields.setdefault("type", "stateless")
    fields.setdefault("payload", {"function": "echo", "data": {"key": "value"}})
    return NewTask(tenant_id=tenant_id, **fields)
