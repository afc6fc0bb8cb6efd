"""Counts and sums over task rows for health, usage and admission.

Read-only and never on a task's own path: the health endpoint, the cluster view and a
tenant's usage read them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine, func, select

from runtime.store.records import PENDING, RUNNING, TASK_STATUSES
from runtime.store.schema import tasks


class TaskFigures:
    """Aggregates over `tasks`; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def count_by_status(
        self, tenant_id: str | None = None, statuses: Iterable[str] | None = None
    ) -> dict[str, int]:
        """Task counts per status (every known status present, zero if none).

        Pass `statuses` (e.g. pending, running) on hot paths: counting only those
        reads an index range instead of the whole task history.
        """
        wanted = tuple(statuses) if statuses else None
        stmt = select(tasks.c.status, func.count()).group_by(tasks.c.status)
        if tenant_id is not None:
            stmt = stmt.where(tasks.c.tenant_id == tenant_id)
        if wanted is not None:
            stmt = stmt.where(tasks.c.status.in_(wanted))
        with self._engine.connect() as conn:
            found = {status: count for status, count in conn.execute(stmt)}
        return {status: 0 for status in (wanted or TASK_STATUSES)} | found

    def running_usage(self, tenant_id: str) -> tuple[int, float, float]:
        """(running tasks, cpu, memory_gb) the tenant's running tasks requested."""
        stmt = select(tasks.c.resources).where(tasks.c.tenant_id == tenant_id, tasks.c.status == RUNNING)
        count, cpu, memory = 0, 0.0, 0.0
        with self._engine.connect() as conn:
            for (resources,) in conn.execute(stmt):
                count += 1
                cpu += float((resources or {}).get("cpu", 1))
                memory += float((resources or {}).get("memory_gb", 0.5))
        return count, cpu, memory

    def oldest_pending_created_at(self) -> datetime | None:
        """Creation time of the longest-waiting pending task (queue age for health)."""
        stmt = select(func.min(tasks.c.created_at)).where(tasks.c.status == PENDING)
        with self._engine.connect() as conn:
            return conn.execute(stmt).scalar_one()

    def completed_since(self, since: datetime) -> int:
        """Tasks that finished (completed_at set) at or after `since`: throughput."""
        stmt = select(func.count()).select_from(tasks).where(tasks.c.completed_at >= since)
        with self._engine.connect() as conn:
            return conn.execute(stmt).scalar_one()
