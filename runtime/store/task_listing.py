"""listTasks as queries whose cost does not grow with the tenant's history.

A page is newest first in keyset order (created_at, task_id). Each shape of filter reads
one ordered index range and stops after the rows it returns, whatever the planner's
statistics say (none exist until ANALYZE runs):

- no filter, since/until: `tasks (tenant_id, created_at, task_id)`;
- one status: `tasks (tenant_id, status, created_at, task_id)`; several: one such range
  per status (UNION ALL of pages of `limit + 1` rows each), merged and cut;
- type: `tasks (tenant_id, type, created_at, task_id)`;
- labels: the first label's range of `task_labels (tenant_id, key, value, created_at,
  task_id)` drives, joined to `tasks` by primary key; further labels are probes;
- pool and/or priority (the dashboard's filters) alone: `tasks (tenant_id, pool, priority,
  created_at, task_id)`, one range when both are given, else one per value of the other
  (runtime.config's POOLS / PRIORITIES, the only ones the API admits), merged and cut.

Other filters on top of the driving range are checked row by row in the query (e.g. a
status of a type, a pool of a label), so a combination whose matches are rare among the
driving range's rows reads further; a page is still full whenever that many matches exist.
The count behind `total` stops at TOTAL_CAP + 1 matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, literal, select, tuple_, union_all

from runtime.config import POOLS, PRIORITIES
from runtime.store.records import TASK_STATUSES
from runtime.store.schema import task_labels, tasks


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """What listTasks matches: one tenant's tasks, every given condition at once."""

    tenant_id: str
    statuses: tuple[str, ...] = ()  # empty: any
    type: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    priority: str | None = None
    pool: str | None = None

    @classmethod
    def of(
        cls,
        tenant_id: str,
        statuses: Sequence[str] | None,
        type_: str | None,
        labels: dict[str, str],
        since: datetime | None,
        until: datetime | None,
        *,
        priority: str | None = None,
        pool: str | None = None,
    ) -> TaskFilter:
        wanted = tuple(dict.fromkeys(statuses or ()))
        if set(TASK_STATUSES) <= set(wanted):
            wanted = ()  # every status: no filter
        return cls(tenant_id, wanted, type_, tuple(labels.items()), since, until, priority, pool)


#: Equality conditions on `tasks` that pick one ordered index range.
_Range = tuple[tuple[str, str], ...]


def _ranges(wanted: TaskFilter) -> list[_Range]:
    """The ordered ranges whose pages are merged: one per status when several are wanted;
    with only a pool or only a priority (and no status, type or label to drive), one per
    value of the other, so that `(tenant_id, pool, priority, created_at, task_id)` serves it."""
    fixed: _Range = tuple(
        (name, value)
        for name, value in (("pool", wanted.pool), ("priority", wanted.priority))
        if value is not None
    )
    if wanted.statuses:
        return [(("status", status), *fixed) for status in wanted.statuses]
    if wanted.labels or wanted.type is not None or len(fixed) != 1:
        return [fixed]
    if wanted.pool is not None:
        return [(*fixed, ("priority", priority)) for priority in PRIORITIES]
    return [(("pool", pool), *fixed) for pool in POOLS]


def _matches(
    wanted: TaskFilter, equal: _Range, columns: Sequence[Any], after: tuple[datetime, str] | None
) -> tuple[Select[Any], tuple[ColumnElement[Any], ColumnElement[Any]]]:
    """SELECT `columns` of the matching tasks whose `equal` columns have those values, and
    the keyset columns of the range that drives it (task_labels' copy when a label filter is
    given)."""
    if wanted.labels:
        (key, value), *others = wanted.labels
        keyset = (task_labels.c.created_at, task_labels.c.task_id)
        # `tasks` joined only for what it alone has: the rows, a status, type, pool or priority.
        joined = bool(equal) or wanted.type is not None or any(c.table is tasks for c in columns)
        source = task_labels.join(tasks, tasks.c.task_id == task_labels.c.task_id) if joined else task_labels
        stmt = (
            select(*columns)
            .select_from(source)
            .where(
                task_labels.c.tenant_id == wanted.tenant_id,
                task_labels.c.key == key,
                task_labels.c.value == value,
            )
        )
        for other_key, other_value in others:
            other = task_labels.alias()
            stmt = stmt.where(
                exists().where(
                    other.c.task_id == task_labels.c.task_id,
                    other.c.key == other_key,
                    other.c.value == other_value,
                )
            )
    else:
        keyset = (tasks.c.created_at, tasks.c.task_id)
        stmt = select(*columns).where(tasks.c.tenant_id == wanted.tenant_id)
    for name, value in equal:
        stmt = stmt.where(tasks.c[name] == value)
    if wanted.type is not None:
        stmt = stmt.where(tasks.c.type == wanted.type)
    if wanted.since is not None:
        stmt = stmt.where(keyset[0] >= wanted.since)
    if wanted.until is not None:
        stmt = stmt.where(keyset[0] < wanted.until)
    if after is not None:
        stmt = stmt.where(tuple_(*keyset) < after)
    return stmt, keyset


def page_query(
    wanted: TaskFilter, after: tuple[datetime, str] | None, rows: int, columns: Sequence[Any] | None = None
) -> Select[Any]:
    """The first `rows` matching tasks after the keyset position `after`, newest first:
    `columns` (by default every `tasks` column in table order), then the keyset's two."""
    chosen = list(tasks.c) if columns is None else list(columns)

    def newest(equal: _Range) -> Select[Any]:
        stmt, (created_at, task_id) = _matches(wanted, equal, chosen, after)
        return (
            stmt.add_columns(created_at.label("k_at"), task_id.label("k_id"))
            .order_by(created_at.desc(), task_id.desc())
            .limit(rows)
        )

    ranges = _ranges(wanted)
    if len(ranges) == 1:
        return newest(ranges[0])
    # One ordered range per status (or pool / priority), each cut at `rows`, merged: never
    # more than rows x ranges rows read, where `status IN (...)` would sort every match.
    merged = union_all(*(select(newest(equal).subquery()) for equal in ranges)).subquery()
    return select(*merged.c).order_by(merged.c.k_at.desc(), merged.c.k_id.desc()).limit(rows)


def capped_count_query(wanted: TaskFilter, cap: int) -> Select[Any]:
    """How many tasks match, counted up to `cap` (a result of `cap` means at least that).

    The matches counted are the first `cap` in keyset order, so that PostgreSQL reads
    them through the ordered index range the page uses instead of scanning the table
    until `cap` rows pass the filter (far into history when the filter is rare)."""
    first = page_query(wanted, None, cap, [literal(1).label("one")])
    return select(func.count()).select_from(first.subquery())
