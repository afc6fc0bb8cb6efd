"""Counts and sums over task rows for health, usage and admission.

Read-only and never on a task's own path: the health endpoint, the cluster view and a
tenant's usage read them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from runtime.store.admission import USAGE
from runtime.store.records import PENDING, RUNNING, TASK_STATUSES, QuotaRecord
from runtime.store.schema import tasks


@dataclass(slots=True)
class TenantUsage:
    """A tenant's running tasks and what they requested; its pending tasks and the most
    cpu and memory one of them asks."""

    running: int = 0
    cpu: float = 0.0
    memory_gb: float = 0.0
    pending: int = 0
    pending_top_cpu: float = 0.0
    pending_top_memory_gb: float = 0.0

    def holds_back(self, quotas: QuotaRecord) -> bool:
        """Some pending task could not start now because of the tenant's quotas (the
        claim would refuse it: runtime.store.admission)."""
        return self.pending > 0 and (
            self.running + 1 > quotas.max_concurrent_tasks
            or self.cpu + self.pending_top_cpu > quotas.cpu_cores
            or self.memory_gb + self.pending_top_memory_gb > quotas.memory_gb
        )


class TaskFigures:
    """Aggregates over `tasks`; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def count_by_status(
        self,
        tenant_id: str | None = None,
        statuses: Iterable[str] | None = None,
        types: Iterable[str] | None = None,
    ) -> dict[str, int]:
        """Task counts per status (every known status present, zero if none).

        Pass `statuses` (e.g. pending, running) on hot paths: counting only those
        reads an index range instead of the whole task history. `types`: only tasks of
        those types (with a tenant: its `(tenant_id, type, ...)` index ranges).
        """
        wanted = tuple(statuses) if statuses else None
        stmt = select(tasks.c.status, func.count()).group_by(tasks.c.status)
        if tenant_id is not None:
            stmt = stmt.where(tasks.c.tenant_id == tenant_id)
        if types is not None:
            stmt = stmt.where(tasks.c.type.in_(tuple(types)))
        if wanted is not None:
            stmt = stmt.where(tasks.c.status.in_(wanted))
        with self._engine.connect() as conn:
            found = {status: count for status, count in conn.execute(stmt)}
        return {status: 0 for status in (wanted or TASK_STATUSES)} | found

    def tenant_usage(self, tenant_id: str) -> TenantUsage:
        """What the tenant's unfinished tasks hold and ask (one indexed read)."""
        usage = TenantUsage()
        with self._engine.connect() as conn:
            for status, count, cpu, memory, top_cpu, top_memory in conn.execute(
                USAGE, {"t_tenant": tenant_id}
            ):
                if status == RUNNING:
                    usage.running, usage.cpu, usage.memory_gb = int(count), float(cpu), float(memory)
                else:
                    usage.pending = int(count)
                    usage.pending_top_cpu, usage.pending_top_memory_gb = float(top_cpu), float(top_memory)
        return usage

    def pending_by_queue(self) -> dict[tuple[str, str], int]:
        """Pending tasks per (pool, priority) (queues with none are absent)."""
        stmt = (
            select(tasks.c.pool, tasks.c.priority, func.count())
            .where(tasks.c.status == PENDING)
            .group_by(tasks.c.pool, tasks.c.priority)
        )
        with self._engine.connect() as conn:
            return {(pool, priority): int(count) for pool, priority, count in conn.execute(stmt)}

    def completed_by_pool_since(self, since: datetime) -> dict[str, int]:
        """Tasks per pool that finished at or after `since` (measured throughput)."""
        stmt = select(tasks.c.pool, func.count()).where(tasks.c.completed_at >= since).group_by(tasks.c.pool)
        with self._engine.connect() as conn:
            return {pool: int(count) for pool, count in conn.execute(stmt)}

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
