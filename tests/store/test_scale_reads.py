"""Reads that must not grow with history use an index range, never a walk of every task.

Checked on the query plans rather than on timings (bench/scale.py measures those):
SQLite's plans without statistics (no ANALYZE has run, as in a fresh deployment) must
SEARCH an index and never sort the page's matches; PostgreSQL's, with sequential scans and
sorts priced out, must need neither (an index serves both the filter and the order).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, event, select
from sqlalchemy.sql import Executable

from runtime.store import Store
from runtime.store.admission import USAGE
from runtime.store.cursor import decode_cursor
from runtime.store.records import PENDING, TOTAL_CAP, UNFINISHED_STATUSES
from runtime.store.retention import Expiry, TaskRetention
from runtime.store.schema import tasks
from runtime.store.task_listing import TaskFilter, capped_count_query, page_query
from tests.store.helpers import T0, new_task

TENANT = "tenant-a"
AFTER = decode_cursor("1705314600000000.task_z")


def _filter(**given: Any) -> TaskFilter:
    return TaskFilter.of(
        TENANT,
        given.get("statuses"),
        given.get("type"),
        given.get("labels", {}),
        given.get("since"),
        given.get("until"),
    )


#: Every listTasks shape the API offers, at the first page and deep in history.
LISTINGS = {
    "no filter": _filter(),
    "one status": _filter(statuses=["completed"]),
    "two statuses": _filter(statuses=["running", "pending"]),
    "type": _filter(type="batch"),
    "label": _filter(labels={"team": "team3"}),
    "two labels": _filter(labels={"team": "team3", "env": "prod"}),
    "since/until": _filter(since=T0, until=T0 + timedelta(days=1)),
    "label and status": _filter(labels={"team": "team3"}, statuses=["failed", "timeout"]),
}


@pytest.fixture
def filled(store: Store) -> Store:
    """A few tasks of two tenants, some finished, with labels: plans need tables, not rows."""
    for n in range(40):
        store.tasks.insert(
            new_task(
                TENANT if n % 2 else "tenant-b",
                at=n,
                type="batch" if n % 5 == 0 else "stateless",
                labels={"team": f"team{n % 4}", "env": "prod"},
            )
        )
    return store


@contextmanager
def _captured(store: Store) -> Iterator[list[tuple[str, Any]]]:
    """The SQL and parameters the engine sends, as the driver gets them."""
    seen: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", grab)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", grab)


def _plan(store: Store, stmt: Executable, params: dict[str, Any] | None = None) -> list[str]:
    """The plan of `stmt` as lines: SQLite's EXPLAIN QUERY PLAN details, PostgreSQL's
    EXPLAIN text with sequential scans and sorts priced out."""
    with store.engine.connect() as conn:
        with _captured(store) as seen:
            conn.execute(stmt, params or {}).all()
        sql, parameters = seen[-1]
        if store.engine.dialect.name == "sqlite":
            return [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)]
        return _postgres_plan(conn, sql, parameters)


def _postgres_plan(conn: Connection, sql: str, parameters: Any) -> list[str]:
    conn.exec_driver_sql("SET enable_seqscan = off")
    conn.exec_driver_sql("SET enable_sort = off")
    try:
        return [row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql, parameters)]
    finally:
        conn.exec_driver_sql("RESET enable_seqscan")
        conn.exec_driver_sql("RESET enable_sort")


_SORT_NODE = re.compile(r"(^|->)\s*(Incremental )?Sort\s+\(")  # a node, not a Merge Append's key


def _walks(plan: list[str], dialect: str) -> list[str]:
    """Lines of the plan that read a whole table."""
    if dialect == "sqlite":
        # SCAN of a table (with or without an index) reads all of it; SCAN of a subquery is
        # the merge of bounded branches.
        return [line for line in plan if re.match(r"SCAN (tasks|task_labels)\b", line)]
    return [line for line in plan if "Seq Scan" in line]


def _sorts(plan: list[str], dialect: str) -> list[str]:
    if dialect == "sqlite":
        return [line for line in plan if "TEMP B-TREE" in line]
    return [line for line in plan if _SORT_NODE.search(line)]


@pytest.mark.parametrize("name", sorted(LISTINGS))
@pytest.mark.parametrize("deep", [False, True], ids=["first-page", "deep-page"])
def test_every_list_page_reads_one_ordered_index_range_per_status(
    filled: Store, name: str, deep: bool
) -> None:
    wanted = LISTINGS[name]
    dialect = filled.engine.dialect.name
    plan = _plan(filled, page_query(wanted, AFTER if deep else None, 101))
    assert _walks(plan, dialect) == [], plan
    if len(wanted.statuses) > 1:  # branches of at most `rows` rows; only their merge sorts
        assert len(_sorts(plan, dialect)) <= len(wanted.statuses) + 1, plan
    else:
        assert _sorts(plan, dialect) == [], plan


@pytest.mark.parametrize("name", sorted(LISTINGS))
def test_the_total_is_counted_from_an_index_and_capped(filled: Store, name: str) -> None:
    wanted = LISTINGS[name]
    dialect = filled.engine.dialect.name
    plan = _plan(filled, capped_count_query(wanted, TOTAL_CAP + 1))
    assert _walks(plan, dialect) == [], plan
    assert len(_sorts(plan, dialect)) <= (len(wanted.statuses) + 1 if len(wanted.statuses) > 1 else 0), plan


def _sqlite_only(store: Store) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL picks among the indexes by its statistics (the bench runs ANALYZE)")


def test_a_label_filter_is_driven_by_the_label_index(filled: Store) -> None:
    _sqlite_only(filled)
    plan = " ".join(_plan(filled, page_query(LISTINGS["label"], None, 101)))
    assert "ix_task_labels_tenant_id_key_value_created_at_task_id" in plan


def test_a_status_filter_uses_the_tenant_status_index(filled: Store) -> None:
    _sqlite_only(filled)
    plan = " ".join(_plan(filled, page_query(LISTINGS["one status"], None, 101)))
    assert "ix_tasks_tenant_id_status_created_at_task_id" in plan


def test_health_usage_and_cluster_figures_read_only_unfinished_or_recent_tasks(filled: Store) -> None:
    dialect = filled.engine.dialect.name
    since = T0 + timedelta(hours=1)
    reads: list[tuple[Executable, dict[str, Any]]] = [
        # /health: pending + running only (runtime.services.health)
        (
            select(tasks.c.status).where(tasks.c.status.in_(UNFINISHED_STATUSES)).group_by(tasks.c.status),
            {},
        ),
        (USAGE, {"t_tenant": TENANT}),  # /v1/cluster/usage
        (
            select(tasks.c.created_at).where(tasks.c.status == PENDING).order_by(tasks.c.created_at).limit(1),
            {},
        ),
        (select(tasks.c.pool).where(tasks.c.status == PENDING), {}),  # pending per queue
        (select(tasks.c.task_id).where(tasks.c.completed_at >= since), {}),  # throughput
    ]
    for stmt, params in reads:
        plan = _plan(filled, stmt, params)
        assert _walks(plan, dialect) == [], plan


def test_retention_finds_expired_tasks_through_an_index(filled: Store) -> None:
    dialect = filled.engine.dialect.name
    retention = TaskRetention(filled.engine)
    for expiry in (Expiry(T0, tenant_id=TENANT), Expiry(T0, except_tenants=("tenant-b",))):
        for stmt in retention.candidates(expiry, 500):
            plan = _plan(filled, stmt)
            assert _walks(plan, dialect) == [] and _sorts(plan, dialect) == [], plan
