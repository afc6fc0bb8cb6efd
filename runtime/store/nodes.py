"""Node registry rows: every gateway and worker process registers and heartbeats here."""

from __future__ import annotations

import builtins
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, func, select, update

from runtime.store.records import NodeRecord
from runtime.store.schema import nodes
from runtime.store.upsert import dialect_insert

DOWN = "down"


def _record(row: Row[Any]) -> NodeRecord:
    return NodeRecord(**row._mapping)


class NodeRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def upsert(self, node: NodeRecord) -> None:
        """Register a node, or replace its row when it registers again (restart)."""
        row = asdict(node)
        with self._engine.begin() as conn:
            stmt = dialect_insert(conn, nodes).values(row)
            stmt = stmt.on_conflict_do_update(
                index_elements=[nodes.c.node_id],
                set_={name: value for name, value in row.items() if name != "node_id"},
            )
            conn.execute(stmt)

    def heartbeat(
        self,
        node_id: str,
        now: datetime,
        tasks_running: int,
        info: dict[str, Any] | None = None,
    ) -> str | None:
        """Record a heartbeat; returns the node's status, None if it is not registered.

        A node that reads back `down` was given up on (its tasks re-queued) and should
        register again rather than carry on silently.
        """
        values: dict[str, Any] = {"last_heartbeat": now, "tasks_running": tasks_running}
        if info is not None:
            values["info"] = info
        stmt = update(nodes).where(nodes.c.node_id == node_id).values(values).returning(nodes.c.status)
        with self._engine.begin() as conn:
            return conn.execute(stmt).scalar_one_or_none()

    def get(self, node_id: str) -> NodeRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(nodes).where(nodes.c.node_id == node_id)).first()
        return None if row is None else _record(row)

    def list(self, role: str | None = None, status: str | None = None) -> list[NodeRecord]:
        """Nodes by id, optionally of one role and/or status."""
        stmt = select(nodes).order_by(nodes.c.node_id)
        if role is not None:
            stmt = stmt.where(nodes.c.role == role)
        if status is not None:
            stmt = stmt.where(nodes.c.status == status)
        with self._engine.connect() as conn:
            return [_record(row) for row in conn.execute(stmt)]

    def set_status(self, node_id: str, status: str) -> bool:
        """Drain, quarantine, reactivate...; False if there is no such node."""
        stmt = update(nodes).where(nodes.c.node_id == node_id).values(status=status)
        with self._engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def mark_stale_down(self, older_than: datetime) -> builtins.list[str]:
        """Mark down every node not heard from since `older_than`; returns their ids.

        One conditional UPDATE, so two watchers running at once never both claim a
        node (each id is returned once: the caller re-queues its tasks).
        A node that never heartbeated counts from its start.
        """
        seen = func.coalesce(nodes.c.last_heartbeat, nodes.c.started_at)
        stmt = (
            update(nodes)
            .where(nodes.c.status != DOWN, seen < older_than)
            .values(status=DOWN)
            .returning(nodes.c.node_id)
        )
        with self._engine.begin() as conn:
            return sorted(conn.execute(stmt).scalars())
