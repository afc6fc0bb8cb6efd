"""gswarm model services: one row per replica (a serving process on a node's port).

A service is its tenant's (every read and write names the tenant: another tenant's service
is simply not found); its id is `<model>-<node>-<port>`. A node's port belongs to at most
one live service (starting, running or stopping) across tenants: `claim` checks it in the
transaction that writes the row. `holder` is the boot id of the node process that spawned
the serving process: a restarted node marks the live rows of an earlier boot failed (their
processes died with it). Rows stay after a stop (status `stopped`) until the id is reused.

Tables are registered on the store's metadata; `ModelServiceRepository.of(engine)` creates
them once per engine if `Store.open` ran before this module was imported.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Engine, Float, Index, Integer, String, Table, Text, select, update
from sqlalchemy.exc import DatabaseError, IntegrityError

from runtime.store.coltypes import UtcDateTime, json_column_type, utc_now
from runtime.store.errors import StoreError
from runtime.store.schema import metadata

LIVE_STATUSES = ("starting", "running", "stopping")
FINAL_STATUSES = ("stopped", "failed")
SERVICE_STATUSES = LIVE_STATUSES + FINAL_STATUSES

model_services = Table(
    "model_services",
    metadata,
    Column("tenant_id", String, primary_key=True),
    Column("service_id", String, primary_key=True),  # <model>-<node>-<port>
    Column("model_name", String, nullable=False),
    Column("node_id", String, nullable=False),
    Column("device", String, nullable=False),
    Column("port", Integer, nullable=False),
    Column("url", String, nullable=False),
    Column("pid", Integer, nullable=True),
    Column("status", String, nullable=False),  # starting | running | stopping | stopped | failed
    Column("framework", String, nullable=False),
    Column("emulated", Integer, nullable=False, default=0),
    Column("config", json_column_type(), nullable=False),
    Column("holder", String, nullable=True),  # boot id of the node process that spawned it
    Column("load_time", Float, nullable=True),  # seconds the serving process took to load
    Column("error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),  # when it first answered its health check
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "node_id", "port"),
    Index(None, "tenant_id", "model_name"),
)


class ServiceExists(StoreError):
    """The id (node and port) names a live service already."""

    def __init__(self, service_id: str) -> None:
        super().__init__(f"service {service_id!r} is already live")
        self.service_id = service_id


class PortTaken(StoreError):
    def __init__(self, node_id: str, port: int) -> None:
        super().__init__(f"port {port} of node {node_id} is taken by a live service")
        self.node_id, self.port = node_id, port


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    tenant_id: str
    service_id: str
    model_name: str
    node_id: str
    device: str
    port: int
    url: str
    status: str
    framework: str = "builtin"
    emulated: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None
    holder: str | None = None
    load_time: float | None = None
    error: str | None = None
    created_at: datetime = field(default_factory=utc_now)
    started_at: datetime | None = None
    updated_at: datetime = field(default_factory=utc_now)

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES


def service_id_of(model_name: str, node_id: str, port: int) -> str:
    return f"{model_name}-{node_id}-{port}"


def _record(row: Any) -> ServiceRecord:
    return ServiceRecord(
        tenant_id=row.tenant_id,
        service_id=row.service_id,
        model_name=row.model_name,
        node_id=row.node_id,
        device=row.device,
        port=row.port,
        url=row.url,
        status=row.status,
        framework=row.framework,
        emulated=bool(row.emulated),
        config=dict(row.config or {}),
        pid=row.pid,
        holder=row.holder,
        load_time=row.load_time,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        updated_at=row.updated_at,
    )


def _values(record: ServiceRecord) -> dict[str, Any]:
    return {
        "tenant_id": record.tenant_id,
        "service_id": record.service_id,
        "model_name": record.model_name,
        "node_id": record.node_id,
        "device": record.device,
        "port": record.port,
        "url": record.url,
        "pid": record.pid,
        "status": record.status,
        "framework": record.framework,
        "emulated": int(record.emulated),
        "config": record.config,
        "holder": record.holder,
        "load_time": record.load_time,
        "error": record.error,
        "created_at": record.created_at,
        "started_at": record.started_at,
        "updated_at": record.updated_at,
    }


_REPOSITORIES: weakref.WeakKeyDictionary[Engine, ModelServiceRepository] = weakref.WeakKeyDictionary()


class ModelServiceRepository:
    """The services table on one engine (`of(engine)`)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        try:
            metadata.create_all(engine, tables=[model_services])
        except DatabaseError:  # another process created it at the same moment
            metadata.create_all(engine, tables=[model_services])

    @classmethod
    def of(cls, engine: Engine) -> ModelServiceRepository:
        repository = _REPOSITORIES.get(engine)
        if repository is None:
            repository = _REPOSITORIES[engine] = cls(engine)
        return repository

    def claim(self, record: ServiceRecord) -> ServiceRecord:
        """Writes a new live row: PortTaken when a live service (any tenant) has the node's
        port, ServiceExists when the tenant's id is live; a final row of that id is replaced."""
        table = model_services
        try:
            with self._engine.begin() as conn:
                taken = conn.execute(
                    select(table.c.service_id).where(
                        table.c.node_id == record.node_id,
                        table.c.port == record.port,
                        table.c.status.in_(LIVE_STATUSES),
                    )
                ).first()
                if taken is not None:
                    if taken.service_id == record.service_id:
                        raise ServiceExists(record.service_id)
                    raise PortTaken(record.node_id, record.port)
                conn.execute(
                    table.delete().where(
                        table.c.tenant_id == record.tenant_id,
                        table.c.service_id == record.service_id,
                        table.c.status.in_(FINAL_STATUSES),
                    )
                )
                conn.execute(table.insert().values(**_values(record)))
        except IntegrityError:
            raise ServiceExists(record.service_id) from None
        return record

    def get(self, tenant_id: str, service_id: str) -> ServiceRecord | None:
        table = model_services
        with self._engine.connect() as conn:
            row = conn.execute(
                select(table).where(table.c.tenant_id == tenant_id, table.c.service_id == service_id)
            ).first()
        return _record(row) if row is not None else None

    def for_tenant(
        self,
        tenant_id: str,
        *,
        model_name: str | None = None,
        node_id: str | None = None,
        statuses: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[ServiceRecord]:
        """The tenant's services, newest first."""
        table = model_services
        where = [table.c.tenant_id == tenant_id]
        if model_name is not None:
            where.append(table.c.model_name == model_name)
        if node_id is not None:
            where.append(table.c.node_id == node_id)
        if statuses is not None:
            where.append(table.c.status.in_(list(statuses)))
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(table)
                .where(*where)
                .order_by(table.c.created_at.desc(), table.c.service_id)
                .limit(limit)
            ).all()
        return [_record(row) for row in rows]

    def on_node(self, node_id: str, statuses: Sequence[str] = LIVE_STATUSES) -> list[ServiceRecord]:
        """Every tenant's services on a node (ports, slots, a restarted node's reconciling)."""
        table = model_services
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(table).where(table.c.node_id == node_id, table.c.status.in_(list(statuses)))
            ).all()
        return [_record(row) for row in rows]

    def ports_in_use(self, node_id: str) -> set[int]:
        return {record.port for record in self.on_node(node_id)}

    def update(
        self, tenant_id: str, service_id: str, *, only_from: Iterable[str] | None = None, **values: Any
    ) -> bool:
        """Sets columns (conditionally on the current status); False when nothing matched."""
        table = model_services
        where = [table.c.tenant_id == tenant_id, table.c.service_id == service_id]
        if only_from is not None:
            where.append(table.c.status.in_(list(only_from)))
        if "emulated" in values:
            values["emulated"] = int(values["emulated"])
        with self._engine.begin() as conn:
            done = conn.execute(update(table).where(*where).values(updated_at=utc_now(), **values))
        return bool(done.rowcount)

    def fail_other_boots(self, node_id: str, boot_id: str, reason: str) -> list[ServiceRecord]:
        """Live services of `node_id` spawned by another (dead) boot of it: now failed."""
        gone = [record for record in self.on_node(node_id) if record.holder != boot_id]
        for record in gone:
            self.update(
                record.tenant_id,
                record.service_id,
                only_from=LIVE_STATUSES,
                status="failed" if record.status != "stopping" else "stopped",
                error=reason,
            )
        return [replace(record, status="failed", error=reason) for record in gone]
