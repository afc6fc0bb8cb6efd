"""The cluster's event sequence: `task_submitted`, `task_started`, `task_completed`,
`worker_registered`, `worker_disconnected`, each with a global, increasing `seq` (what
/ws/telemetry and the dashboard's live socket replay).

Rows are written by triggers, in the transaction of the change they report (like the
webhook outbox): every writer of a task's or node's status — intake, executor, cancel,
reconciler, node registry — records them without a Python statement on the hot path and
without a commit of its own. Every task type is recorded, with its `task_type`, so each
reader picks what it serves (CloudAI's /ws/telemetry: container tasks only). A task costs
three small row inserts: at insert, at running, at its ending.

Retention is bounded: `prune` keeps the newest RETENTION_EVENTS rows younger than
RETENTION_SECONDS. The count is what bounds a reconnecting client's replay at high
throughput: 3 events a task at a few thousand tasks a second (batch submits) is ~10,000
events a second, so the old default of 10,000 covered about a second of outage. 500,000
rows (~155 bytes each in SQLite, ~80 MB; restored by the pruner every PRUNE_EVERY_SECONDS)
cover ~50 s at that rate, minutes at the REST path's hundreds of tasks a second, and the
whole RETENTION_SECONDS below ~140 events a second.

The tables are created fresh with each store (no migrations): an existing store gains the
`task_type` column only when it is created anew.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    event,
    func,
    select,
)

from runtime.store.schema import metadata

#: Retention (`GREY_TELEMETRY_RETENTION_EVENTS`, `GREY_TELEMETRY_RETENTION_SECONDS`): the
#: coordinator keeps the newest this many events, none older than this age.
RETENTION_EVENTS = int(os.environ.get("GREY_TELEMETRY_RETENTION_EVENTS") or 500_000)
RETENTION_SECONDS = float(os.environ.get("GREY_TELEMETRY_RETENTION_SECONDS") or 3600.0)
#: The coordinator prunes at most this often.
PRUNE_EVERY_SECONDS = 60.0
#: A prune deletes at most this many rows a transaction, and pauses this long between
#: transactions, so that the writers' triggers (SQLite: one write lock) get in between.
PRUNE_BATCH_ROWS = 2000
PRUNE_PAUSE_SECONDS = 0.005

#: Grey statuses that end a task: its `task_completed` event names which in `status`.
ENDINGS = ("completed", "failed", "cancelled", "timeout")

cluster_events = Table(
    "cluster_events",
    metadata,
    # SQLite: INTEGER PRIMARY KEY AUTOINCREMENT (never reused after a prune); PostgreSQL: bigserial.
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("kind", String, nullable=False),
    Column("tenant_id", String, nullable=True),  # task events: only this tenant sees them
    Column("task_id", String, nullable=True),
    Column("task_type", String, nullable=True),  # task events: the task's type (worker events: NULL)
    Column("node_id", String, nullable=True),  # the worker (a task's: where it ran)
    Column("status", String, nullable=True),  # the task's or node's status after the change
    Column("at", Float, nullable=False),  # seconds since the epoch, the database's clock
    Index(None, "at"),
    sqlite_autoincrement=True,
)

_COLUMNS = "kind, tenant_id, task_id, task_type, node_id, status, at"
_TASK_VALUES = "NEW.tenant_id, NEW.task_id, NEW.type, NEW.executed_on, NEW.status"
_NODE_VALUES = "NULL, NULL, NULL, NEW.node_id, NEW.status"
_ENDINGS = ", ".join(f"'{status}'" for status in ENDINGS)
_TASK_KIND = "CASE WHEN NEW.status = 'running' THEN 'task_started' ELSE 'task_completed' END"
_NODE_KIND = "CASE WHEN NEW.status = 'down' THEN 'worker_disconnected' ELSE 'worker_registered' END"
_TASK_WHEN = f"NEW.status IS {{distinct}} OLD.status AND NEW.status IN ('running', {_ENDINGS})"
_NODE_WHEN = (
    "NEW.role = 'worker' AND NEW.status IS {distinct} OLD.status "
    "AND (NEW.status = 'down' OR OLD.status = 'down')"
)
_SQLITE_NOW = "(julianday('now') - 2440587.5) * 86400.0"

_SQLITE = (
    "DROP TRIGGER IF EXISTS tasks_cluster_events",
    "DROP TRIGGER IF EXISTS tasks_cluster_events_insert",
    "DROP TRIGGER IF EXISTS nodes_cluster_events_insert",
    "DROP TRIGGER IF EXISTS nodes_cluster_events_update",
    f"""CREATE TRIGGER tasks_cluster_events AFTER UPDATE OF status ON tasks FOR EACH ROW
    WHEN {_TASK_WHEN.format(distinct="NOT")}
    BEGIN
      INSERT INTO cluster_events ({_COLUMNS})
      VALUES ({_TASK_KIND}, {_TASK_VALUES}, {_SQLITE_NOW});
    END""",
    f"""CREATE TRIGGER tasks_cluster_events_insert AFTER INSERT ON tasks FOR EACH ROW
    BEGIN
      INSERT INTO cluster_events ({_COLUMNS})
      VALUES ('task_submitted', {_TASK_VALUES}, {_SQLITE_NOW});
    END""",
    f"""CREATE TRIGGER nodes_cluster_events_insert AFTER INSERT ON nodes FOR EACH ROW
    WHEN NEW.role = 'worker'
    BEGIN
      INSERT INTO cluster_events ({_COLUMNS})
      VALUES ({_NODE_KIND}, {_NODE_VALUES}, {_SQLITE_NOW});
    END""",
    f"""CREATE TRIGGER nodes_cluster_events_update AFTER UPDATE OF status ON nodes FOR EACH ROW
    WHEN {_NODE_WHEN.format(distinct="NOT")}
    BEGIN
      INSERT INTO cluster_events ({_COLUMNS})
      VALUES ({_NODE_KIND}, {_NODE_VALUES}, {_SQLITE_NOW});
    END""",
)

_PG_NOW = "extract(epoch from clock_timestamp())"
_POSTGRESQL = (
    f"""CREATE OR REPLACE FUNCTION tasks_cluster_events() RETURNS trigger LANGUAGE plpgsql AS $b$
    BEGIN
      INSERT INTO cluster_events ({_COLUMNS})
      VALUES ({_TASK_KIND}, {_TASK_VALUES}, {_PG_NOW});
      RETURN NULL;
    END $b$""",
    f"""CREATE OR REPLACE FUNCTION tasks_cluster_events_insert() RETURNS trigger LANGUAGE plpgsql AS $b$
    BEGIN
      INSERT INTO cluster_events ({_COLUMNS})
      VALUES ('task_submitted', {_TASK_VALUES}, {_PG_NOW});
      RETURN NULL;
    END $b$""",
    f"""CREATE OR REPLACE FUNCTION nodes_cluster_events() RETURNS trigger LANGUAGE plpgsql AS $b$
    BEGIN
      INSERT INTO cluster_events ({_COLUMNS})
      VALUES ({_NODE_KIND}, {_NODE_VALUES}, {_PG_NOW});
      RETURN NULL;
    END $b$""",
    "DROP TRIGGER IF EXISTS tasks_cluster_events ON tasks",
    "DROP TRIGGER IF EXISTS tasks_cluster_events_insert ON tasks",
    "DROP TRIGGER IF EXISTS nodes_cluster_events_insert ON nodes",
    "DROP TRIGGER IF EXISTS nodes_cluster_events_update ON nodes",
    f"""CREATE TRIGGER tasks_cluster_events AFTER UPDATE OF status ON tasks FOR EACH ROW
    WHEN ({_TASK_WHEN.format(distinct="DISTINCT FROM")})
    EXECUTE FUNCTION tasks_cluster_events()""",
    """CREATE TRIGGER tasks_cluster_events_insert AFTER INSERT ON tasks FOR EACH ROW
    EXECUTE FUNCTION tasks_cluster_events_insert()""",
    """CREATE TRIGGER nodes_cluster_events_insert AFTER INSERT ON nodes FOR EACH ROW
    WHEN (NEW.role = 'worker') EXECUTE FUNCTION nodes_cluster_events()""",
    f"""CREATE TRIGGER nodes_cluster_events_update AFTER UPDATE OF status ON nodes FOR EACH ROW
    WHEN ({_NODE_WHEN.format(distinct="DISTINCT FROM")})
    EXECUTE FUNCTION nodes_cluster_events()""",
)

_TRIGGERS = {"sqlite": _SQLITE, "postgresql": _POSTGRESQL}


@event.listens_for(metadata, "after_create")
def _create_triggers(_metadata: MetaData, connection: Connection, **kw: Any) -> None:
    """In the `create_all` that creates the table, once `tasks` and `nodes` exist."""
    if cluster_events in kw.get("tables", ()):
        for statement in _TRIGGERS.get(connection.dialect.name, ()):
            connection.exec_driver_sql(statement)


@dataclass(frozen=True, slots=True)
class ClusterEventRecord:
    seq: int
    kind: str
    tenant_id: str | None
    task_id: str | None
    task_type: str | None  # the task's type (task events only)
    node_id: str | None
    status: str | None
    at: float  # seconds since the epoch


class ClusterEvents:
    """Reads and prunes the sequence; the triggers write it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def after(self, seq: int, limit: int = 1000) -> list[ClusterEventRecord]:
        """Events with a sequence number above `seq`, oldest first."""
        stmt = (
            select(cluster_events)
            .where(cluster_events.c.seq > seq)
            .order_by(cluster_events.c.seq)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [ClusterEventRecord(**row._mapping) for row in conn.execute(stmt)]

    def bounds(self) -> tuple[int, int]:
        """(oldest retained seq, newest seq); (0, 0) when none is retained."""
        stmt = select(func.min(cluster_events.c.seq), func.max(cluster_events.c.seq))
        with self._engine.connect() as conn:
            low, high = conn.execute(stmt).one()
        return int(low or 0), int(high or 0)

    def prune(
        self,
        keep: int = RETENTION_EVENTS,
        older_than: float | None = None,
        batch: int = PRUNE_BATCH_ROWS,
        pause: float = PRUNE_PAUSE_SECONDS,
    ) -> int:
        """Deletes all but the newest `keep` events, and any older than `older_than` (epoch s;
        default: RETENTION_SECONDS ago); how many it deleted.

        At most `batch` rows a transaction, `pause` seconds apart: a backlog
        (at ~10,000 events a second, 60 s of them between prunes) never holds the write
        lock for longer than one batch takes, whatever its size. The newest seq is read once at
        the start: rows written meanwhile are left to the next prune."""
        if older_than is None:
            older_than = time.time() - RETENTION_SECONDS
        _, high = self.bounds()
        # Past the newest `keep` (a primary-key range), then older than the age (the `at`
        # index): each read of a batch is an index range, never a walk of the kept rows.
        deleted = self._delete_batches(cluster_events.c.seq <= high - keep, batch, pause)
        return deleted + self._delete_batches(cluster_events.c.at < older_than, batch, pause)

    def _delete_batches(self, expired: ColumnElement[bool], batch: int, pause: float) -> int:
        deleted = 0
        while True:
            # Up to `batch` expired rows by primary key, through a subquery with LIMIT (which
            # SQLite and PostgreSQL both take; neither limits a DELETE itself portably).
            chosen = select(cluster_events.c.seq).where(expired).limit(batch).scalar_subquery()
            with self._engine.begin() as conn:
                count = conn.execute(delete(cluster_events).where(cluster_events.c.seq.in_(chosen))).rowcount
            deleted += int(count or 0)
            if not count or count < batch:
                return deleted
            if pause > 0:
                time.sleep(pause)  # the lock is free: a waiting writer gets in
