"""Tenant quotas as SQL: the conditions that make submits and claims respect them.

The store decides, in the statement that writes, so no two writers can both pass a limit:

- **claims** (`within_quota`, added to the pending -> running UPDATE): the tenant's
  running tasks plus this one stay within `max_concurrent_tasks`, and what they requested
  (`resources.cpu`, default 1; `resources.memory_gb`, default 0.5) within `cpu_cores` and
  `memory_gb`. A claim that would exceed them matches no row: the task stays pending.
- **submits** (`DEPTH`): the tenant's unfinished (pending + running) tasks, read in the
  transaction that inserts, against `max_queue_depth`.

A tenant without a `quotas` row has DEFAULT_QUOTAS. On SQLite every write transaction
holds the database's one write lock, so the counts a statement reads cannot change under
it. On PostgreSQL (read committed) concurrent transactions would each count without the
other's rows: claims first take one transaction-scoped advisory lock (`CLAIM_LOCK`: one
for all tenants, so claims of several tenants in one group commit can never deadlock),
submits a lock per tenant (`DEPTH_LOCK`, taken in tenant order by the intake batch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Integer, Select, and_, bindparam, func, literal, select
from sqlalchemy.sql.selectable import ScalarSelect

from runtime.store.direct import DirectTransaction
from runtime.store.errors import QueueFull
from runtime.store.records import DEFAULT_QUOTAS, RUNNING, UNFINISHED_STATUSES
from runtime.store.schema import quotas, tasks

#: What a task without `resources` requests (as runtime.execution.nodes.Request).
DEFAULT_CPU, DEFAULT_MEMORY_GB = 1.0, 0.5
#: First key of Grey's PostgreSQL advisory locks (two-key form): "grey" in ASCII.
LOCK_NAMESPACE = 0x67726579
_CLAIMS, _DEPTH = 1, 2


def cpu_of(table: FromClause) -> ColumnElement[float]:
    """The cores a task row requested."""
    return func.coalesce(table.c.resources["cpu"].as_float(), DEFAULT_CPU)


def memory_of(table: FromClause) -> ColumnElement[float]:
    """The memory (GB) a task row requested."""
    return func.coalesce(table.c.resources["memory_gb"].as_float(), DEFAULT_MEMORY_GB)


def _unfinished() -> ColumnElement[bool]:
    """Pending or running, one bind per status (no expanding IN: the statements here run
    through runtime.store.direct, compiled once)."""
    return tasks.c.status.in_(
        [bindparam(None, status, type_=tasks.c.status.type) for status in UNFINISHED_STATUSES]
    )


def limit_of(name: str, tenant: ColumnElement[Any]) -> ColumnElement[Any]:
    """The tenant's quota `name`: its row's value, else the default."""
    row = select(quotas.c[name]).where(quotas.c.tenant_id == tenant).correlate(tasks).scalar_subquery()
    return func.coalesce(row, DEFAULT_QUOTAS[name])


def within_quota() -> ScalarSelect[Any]:
    """True when the `tasks` row being claimed fits beside the tenant's running tasks
    (correlated to the UPDATE's `tasks`): one pass over the tenant's running rows."""
    running = tasks.alias("quota_running")
    tenant = tasks.c.tenant_id
    fits = and_(
        func.count() + 1 <= limit_of("max_concurrent_tasks", tenant),
        func.coalesce(func.sum(cpu_of(running)), 0.0) + cpu_of(tasks) <= limit_of("cpu_cores", tenant),
        func.coalesce(func.sum(memory_of(running)), 0.0) + memory_of(tasks) <= limit_of("memory_gb", tenant),
    )
    return select(fits).where(running.c.tenant_id == tenant, running.c.status == RUNNING).scalar_subquery()


#: Unfinished tasks of the tenant `t_tenant` and its max_queue_depth.
DEPTH: Select[Any] = select(
    select(func.count())
    .select_from(tasks)
    .where(tasks.c.tenant_id == bindparam("t_tenant"), _unfinished())
    .scalar_subquery(),
    limit_of("max_queue_depth", bindparam("t_tenant")),
)

#: PostgreSQL: every quota-checked claim, one at a time (until its transaction ends).
CLAIM_LOCK: Select[Any] = select(
    func.pg_advisory_xact_lock(literal(LOCK_NAMESPACE + _CLAIMS, Integer), literal(0, Integer))
)


#: PostgreSQL: the submits of the tenant `t_tenant`, one transaction at a time.
DEPTH_LOCK: Select[Any] = select(
    func.pg_advisory_xact_lock(
        literal(LOCK_NAMESPACE + _DEPTH, Integer), func.hashtext(bindparam("t_tenant"))
    )
)


#: Usage of one tenant `t_tenant`, per unfinished status: count, cpu and memory summed,
#: and the largest cpu and memory one task asks (whether a pending task is held back).
USAGE: Select[Any] = (
    select(
        tasks.c.status,
        func.count(),
        func.coalesce(func.sum(cpu_of(tasks)), 0.0),
        func.coalesce(func.sum(memory_of(tasks)), 0.0),
        func.coalesce(func.max(cpu_of(tasks)), 0.0),
        func.coalesce(func.max(memory_of(tasks)), 0.0),
    )
    .where(tasks.c.tenant_id == bindparam("t_tenant"), _unfinished())
    .group_by(tasks.c.status)
)


class DepthGate:
    """The `max_queue_depth` check of one tenant's submits in one intake batch.

    Counted once per transaction (the first submit of the tenant in it reads the count and
    the limit; the next ones add what this transaction inserted), and again in each
    transaction a job is re-run in alone (runtime.store.group_commit)."""

    def __init__(self, tenant_id: str, postgres: bool) -> None:
        self.tenant_id, self._postgres = tenant_id, postgres
        self._tx: DirectTransaction | None = None
        self._depth = self._limit = 0

    def admit(self, tx: DirectTransaction) -> QueueFull | None:
        """None: the task may be inserted in `tx` (counted); else the refusal."""
        if self._tx is not tx:
            params = {"t_tenant": self.tenant_id}
            if self._postgres:
                tx.execute(DEPTH_LOCK, params)
            row = tx.returning(DEPTH, params)
            assert row is not None
            self._tx, self._depth, self._limit = tx, int(row[0]), int(row[1])
        if self._depth >= self._limit:
            return QueueFull(self.tenant_id, self._limit, self._depth)
        self._depth += 1
        return None

    @staticmethod
    def lock_all(tenant_ids: list[str]) -> Callable[[DirectTransaction], None]:
        """A job taking the PostgreSQL submit locks of these tenants, in this order."""

        def lock(tx: DirectTransaction) -> None:
            for tenant_id in tenant_ids:
                tx.execute(DEPTH_LOCK, {"t_tenant": tenant_id})

        return lock
