"""gswarm placement: models, data chunks, where their bytes are, and the placement nodes.

Models and chunks are a tenant's (every read and write names the tenant: another tenant's
model is simply not found). Locations say which node and device holds a complete copy:
the engine writes a location row only after the bytes are complete (and verified), and
removes it before the bytes go. A location on a volatile device (`dram`, `gpuN`) also
names the process that holds it (`holder`, the node's boot id): a location whose holder is
not the node's current boot is stale (that process died) and is never reported.

Placement nodes are shared hardware (no tenant): their devices, capacities, the address
and token of their byte server, their boot id and heartbeat.

Tables are registered on the store's metadata; `PlacementRepository.of(engine)` creates
them once per engine if `Store.open` ran before this module was imported.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    Row,
    String,
    Table,
    and_,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DatabaseError, IntegrityError

from runtime.store.coltypes import UtcDateTime, json_column_type, utc_now
from runtime.store.errors import StoreError
from runtime.store.schema import metadata, task_labels, tasks
from runtime.store.upsert import dialect_insert

placement_models = Table(
    "placement_models",
    metadata,
    Column("tenant_id", String, primary_key=True),
    Column("name", String, primary_key=True),
    Column("model_type", String, nullable=False),
    Column("size", BigInteger, nullable=True),  # bytes; known once downloaded, or as registered
    Column("source_url", String, nullable=True),
    Column("meta", json_column_type(), nullable=False),
    Column("status", String, nullable=False),  # registered | downloading | ready | failed
    Column("sha256", String, nullable=True),  # of the bytes, once downloaded (or as registered)
    Column("filename", String, nullable=True),  # the checkpoint file's name on disk
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

placement_chunks = Table(
    "placement_chunks",
    metadata,
    Column("tenant_id", String, primary_key=True),
    Column("chunk_id", String, primary_key=True),
    Column("chunk_type", String, nullable=False),
    Column("format", String, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String, nullable=False),
    Column("meta", json_column_type(), nullable=False),
    Column("access_count", Integer, nullable=False, default=0),
    Column("refs", json_column_type(), nullable=False),  # who references it (force to delete)
    Column("created_by", String, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)

placement_locations = Table(
    "placement_locations",
    metadata,
    Column("tenant_id", String, primary_key=True),
    Column("kind", String, primary_key=True),  # model | chunk
    Column("name", String, primary_key=True),  # model name or chunk id
    Column("node_id", String, primary_key=True),
    Column("device", String, primary_key=True),
    Column("status", String, nullable=False),  # ready | available (gswarm's words per kind)
    Column("emulated", Boolean, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String, nullable=True),
    Column("bytes_per_second", Float, nullable=True),  # achieved by the transfer that put it here
    Column("holder", String, nullable=True),  # boot id of the process holding volatile bytes
    Column("source", String, nullable=True),  # manual (added through the API) or the transfer
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "node_id", "device"),
)

placement_nodes = Table(
    "placement_nodes",
    metadata,
    Column("node_id", String, primary_key=True),
    Column("hostname", String, nullable=False),
    Column("address", String, nullable=False),  # byte server base URL
    Column("token", String, nullable=False),  # byte server secret (readers are nodes and serving)
    Column("boot_id", String, nullable=False),
    Column("devices", json_column_type(), nullable=False),  # [{name, total, used, emulated, kind}]
    Column("bandwidth", json_column_type(), nullable=False),  # {"disk_read": B/s, "disk->dram": B/s, ...}
    Column("started_at", UtcDateTime, nullable=False),
    Column("heartbeat_at", UtcDateTime, nullable=False),
    Column("status", String, nullable=False),  # online | offline
)

TABLES = (placement_models, placement_chunks, placement_locations, placement_nodes)


class ModelExists(StoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"model {name!r} is already registered")
        self.name = name


@dataclass(frozen=True, slots=True)
class ModelRecord:
    tenant_id: str
    name: str
    model_type: str
    size: int | None
    source_url: str | None
    meta: dict[str, Any]
    status: str
    sha256: str | None
    filename: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    tenant_id: str
    chunk_id: str
    chunk_type: str
    format: str
    size: int
    sha256: str
    meta: dict[str, Any]
    access_count: int
    refs: list[str]
    created_by: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LocationRecord:
    tenant_id: str
    kind: str
    name: str
    node_id: str
    device: str
    status: str
    emulated: bool
    size: int
    sha256: str | None = None
    bytes_per_second: float | None = None
    holder: str | None = None
    source: str | None = None
    updated_at: datetime = field(default_factory=utc_now)

    @property
    def place(self) -> str:
        return f"{self.node_id}:{self.device}"


@dataclass(frozen=True, slots=True)
class PlacementNodeRecord:
    node_id: str
    hostname: str
    address: str
    token: str
    boot_id: str
    devices: list[dict[str, Any]]
    bandwidth: dict[str, float]
    started_at: datetime
    heartbeat_at: datetime
    status: str


Record = TypeVar("Record", ModelRecord, ChunkRecord, LocationRecord, PlacementNodeRecord)


def _record(kind: type[Record], row: Row[Any]) -> Record:
    """The record of a row of its table: a record's fields are its table's columns."""
    return kind(**row._mapping)


def _row(record: ModelRecord | ChunkRecord | LocationRecord | PlacementNodeRecord) -> dict[str, Any]:
    """The column values of a record (the inverse of `_record`)."""
    return {name: getattr(record, name) for name in type(record).__slots__}


def _model_is(tenant_id: str, name: str) -> ColumnElement[bool]:
    table = placement_models
    return and_(table.c.tenant_id == tenant_id, table.c.name == name)


def _chunk_is(tenant_id: str, chunk_id: str) -> ColumnElement[bool]:
    table = placement_chunks
    return and_(table.c.tenant_id == tenant_id, table.c.chunk_id == chunk_id)


def _locations_of(tenant_id: str, kind: str, name: str) -> ColumnElement[bool]:
    """Every location row of one model (or chunk)."""
    loc = placement_locations
    return and_(loc.c.tenant_id == tenant_id, loc.c.kind == kind, loc.c.name == name)


def _location_is(tenant_id: str, kind: str, name: str, node_id: str, device: str) -> ColumnElement[bool]:
    loc = placement_locations
    return and_(_locations_of(tenant_id, kind, name), loc.c.node_id == node_id, loc.c.device == device)


def _upsert(conn: Connection, table: Table, values: dict[str, Any]) -> None:
    """Inserts the row, or replaces the one with its primary key."""
    keys = [column.name for column in table.primary_key]
    statement = dialect_insert(conn, table).values(**values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=keys, set_={k: v for k, v in values.items() if k not in keys}
        )
    )


_REPOSITORIES: weakref.WeakKeyDictionary[Engine, PlacementRepository] = weakref.WeakKeyDictionary()


class PlacementRepository:
    """Models, chunks, locations and placement nodes on one engine (`of(engine)`)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        _create_tables(engine)

    @property
    def engine(self) -> Engine:
        """The store's engine: serving keeps its service rows on the same one."""
        return self._engine

    @classmethod
    def of(cls, engine: Engine) -> PlacementRepository:
        repository = _REPOSITORIES.get(engine)
        if repository is None:
            repository = _REPOSITORIES[engine] = cls(engine)
        return repository

    # -- models -----------------------------------------------------------------------------

    def register_model(self, record: ModelRecord) -> ModelRecord:
        """ModelExists when the tenant already has a model of that name."""
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(placement_models).values(**_row(record)))
        except IntegrityError:
            raise ModelExists(record.name) from None
        return record

    def get_model(self, tenant_id: str, name: str) -> ModelRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(placement_models).where(_model_is(tenant_id, name))).first()
        return _record(ModelRecord, row) if row is not None else None

    def list_models(
        self,
        tenant_id: str,
        *,
        model_type: str | None = None,
        status: str | None = None,
        names: Sequence[str] | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> tuple[list[ModelRecord], int]:
        """A page of the tenant's models (by name) and how many match in all."""
        table = placement_models
        where = [table.c.tenant_id == tenant_id]
        if model_type is not None:
            where.append(table.c.model_type == model_type)
        if status is not None:
            where.append(table.c.status == status)
        if names is not None:
            where.append(table.c.name.in_(list(names)))
        with self._engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
            rows = conn.execute(
                select(table).where(*where).order_by(table.c.name).offset(offset).limit(limit)
            ).all()
        return [_record(ModelRecord, row) for row in rows], int(total)

    def update_model(self, tenant_id: str, name: str, **values: Any) -> bool:
        with self._engine.begin() as conn:
            done = conn.execute(
                update(placement_models)
                .where(_model_is(tenant_id, name))
                .values(updated_at=utc_now(), **values)
            )
        return bool(done.rowcount)

    def delete_model(self, tenant_id: str, name: str) -> bool:
        """The model's row and its location rows (the caller has freed the bytes first)."""
        with self._engine.begin() as conn:
            conn.execute(delete(placement_locations).where(_locations_of(tenant_id, "model", name)))
            done = conn.execute(delete(placement_models).where(_model_is(tenant_id, name)))
        return bool(done.rowcount)

    # -- chunks -----------------------------------------------------------------------------

    def create_chunk(self, record: ChunkRecord) -> ChunkRecord:
        with self._engine.begin() as conn:
            conn.execute(insert(placement_chunks).values(**_row(record)))
        return record

    def get_chunk(self, tenant_id: str, chunk_id: str) -> ChunkRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(placement_chunks).where(_chunk_is(tenant_id, chunk_id))).first()
        return _record(ChunkRecord, row) if row is not None else None

    def list_chunks(self, tenant_id: str, chunk_type: str | None = None) -> list[ChunkRecord]:
        table = placement_chunks
        where = [table.c.tenant_id == tenant_id]
        if chunk_type is not None:
            where.append(table.c.chunk_type == chunk_type)
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(table).where(*where).order_by(table.c.created_at, table.c.chunk_id)
            ).all()
        return [_record(ChunkRecord, row) for row in rows]

    def touch_chunk(self, tenant_id: str, chunk_id: str) -> None:
        """One more access (reads of its bytes count)."""
        table = placement_chunks
        with self._engine.begin() as conn:
            conn.execute(
                update(table)
                .where(_chunk_is(tenant_id, chunk_id))
                .values(access_count=table.c.access_count + 1)
            )

    def set_chunk_refs(self, tenant_id: str, chunk_id: str, refs: list[str]) -> bool:
        with self._engine.begin() as conn:
            done = conn.execute(
                update(placement_chunks).where(_chunk_is(tenant_id, chunk_id)).values(refs=sorted(set(refs)))
            )
        return bool(done.rowcount)

    def set_chunk_digest(self, tenant_id: str, chunk_id: str, sha256: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(placement_chunks).where(_chunk_is(tenant_id, chunk_id)).values(sha256=sha256))

    def delete_chunk(self, tenant_id: str, chunk_id: str) -> bool:
        with self._engine.begin() as conn:
            conn.execute(delete(placement_locations).where(_locations_of(tenant_id, "chunk", chunk_id)))
            done = conn.execute(delete(placement_chunks).where(_chunk_is(tenant_id, chunk_id)))
        return bool(done.rowcount)

    # -- locations --------------------------------------------------------------------------

    def put_location(self, record: LocationRecord) -> None:
        """Writes (or replaces) the row: call only once the bytes are complete there."""
        with self._engine.begin() as conn:
            _upsert(conn, placement_locations, _row(record))

    def remove_location(self, tenant_id: str, kind: str, name: str, node_id: str, device: str) -> bool:
        """Removes the row: call before the bytes go."""
        with self._engine.begin() as conn:
            done = conn.execute(
                delete(placement_locations).where(_location_is(tenant_id, kind, name, node_id, device))
            )
        return bool(done.rowcount)

    def get_location(
        self, tenant_id: str, kind: str, name: str, node_id: str, device: str
    ) -> LocationRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(placement_locations).where(_location_is(tenant_id, kind, name, node_id, device))
            ).first()
        return _record(LocationRecord, row) if row is not None else None

    def locations(
        self, tenant_id: str, kind: str, names: Sequence[str] | None = None
    ) -> list[LocationRecord]:
        """Every location row of the tenant's models (or chunks), by name, node, device;
        unfiltered by liveness (the engine drops those whose holder died)."""
        loc = placement_locations
        where = [loc.c.tenant_id == tenant_id, loc.c.kind == kind]
        if names is not None:
            where.append(loc.c.name.in_(list(names)))
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(loc).where(*where).order_by(loc.c.name, loc.c.node_id, loc.c.device)
            ).all()
        return [_record(LocationRecord, row) for row in rows]

    def node_locations(self, node_id: str, device: str | None = None) -> list[LocationRecord]:
        """Every tenant's locations on a node (a node reconciling what it holds)."""
        loc = placement_locations
        where = [loc.c.node_id == node_id]
        if device is not None:
            where.append(loc.c.device == device)
        with self._engine.connect() as conn:
            rows = conn.execute(select(loc).where(*where)).all()
        return [_record(LocationRecord, row) for row in rows]

    def remove_stale_volatile(self, node_id: str, boot_id: str) -> int:
        """Volatile locations of `node_id` held by another (dead) process of it."""
        loc = placement_locations
        with self._engine.begin() as conn:
            done = conn.execute(
                delete(loc).where(
                    loc.c.node_id == node_id,
                    loc.c.holder.is_not(None),
                    loc.c.holder != boot_id,
                )
            )
        return int(done.rowcount or 0)

    # -- nodes ------------------------------------------------------------------------------

    def upsert_node(self, record: PlacementNodeRecord) -> None:
        with self._engine.begin() as conn:
            _upsert(conn, placement_nodes, _row(record))

    def beat(
        self,
        node_id: str,
        boot_id: str,
        devices: list[dict[str, Any]],
        bandwidth: dict[str, float] | None = None,
        status: str = "online",
    ) -> bool:
        """The node's heartbeat and device usage (only from its current boot)."""
        table = placement_nodes
        values: dict[str, Any] = {"devices": devices, "heartbeat_at": utc_now(), "status": status}
        if bandwidth is not None:
            values["bandwidth"] = bandwidth
        with self._engine.begin() as conn:
            done = conn.execute(
                update(table)
                .where(and_(table.c.node_id == node_id, table.c.boot_id == boot_id))
                .values(**values)
            )
        return bool(done.rowcount)

    def get_node(self, node_id: str) -> PlacementNodeRecord | None:
        table = placement_nodes
        with self._engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.node_id == node_id)).first()
        return _record(PlacementNodeRecord, row) if row is not None else None

    def list_nodes(self) -> list[PlacementNodeRecord]:
        table = placement_nodes
        with self._engine.connect() as conn:
            rows = conn.execute(select(table).order_by(table.c.node_id)).all()
        return [_record(PlacementNodeRecord, row) for row in rows]

    # -- queue figures ------------------------------------------------------------------------

    def tasks_ahead(self, pool: str, priority_rank: dict[str, int], priority: str, task_id: str) -> int:
        """Unfinished tasks of a node queue that run before `task_id` (more urgent, or as
        urgent and older, or running): its `position`."""
        urgent = [name for name, rank in priority_rank.items() if rank < priority_rank[priority]]
        with self._engine.connect() as conn:
            created = conn.execute(select(tasks.c.created_at).where(tasks.c.task_id == task_id)).scalar()
            base = select(func.count()).select_from(tasks).where(tasks.c.pool == pool)
            running = conn.execute(base.where(tasks.c.status == "running")).scalar_one()
            pending = tasks.c.status == "pending"
            ahead = conn.execute(
                base.where(
                    pending,
                    (tasks.c.priority.in_(urgent))
                    | (
                        (tasks.c.priority == priority)
                        & (
                            tasks.c.created_at < created
                            if created is not None
                            else tasks.c.task_id != task_id
                        )
                    ),
                )
            ).scalar_one()
        return int(running) + int(ahead)


def gswarm_task_counts(engine: Engine, tenant_id: str) -> dict[str, int]:
    """The tenant's gswarm tasks (types `gswarm.*`) by status."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(tasks.c.status, func.count())
            .where(tasks.c.tenant_id == tenant_id, tasks.c.type.like("gswarm.%"))
            .group_by(tasks.c.status)
        ).all()
    return {str(status): int(count) for status, count in rows}


#: The label a chunk's move or transfer task carries: unfinished ones are its references.
CHUNK_LABEL = "gswarm.chunk"


def chunk_task_refs(engine: Engine, tenant_id: str, chunk_id: str) -> list[str]:
    """Unfinished tasks (pending, running) working on the chunk: it is referenced."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(tasks.c.task_id)
            .select_from(task_labels.join(tasks, tasks.c.task_id == task_labels.c.task_id))
            .where(
                task_labels.c.tenant_id == tenant_id,
                task_labels.c.key == CHUNK_LABEL,
                task_labels.c.value == chunk_id,
                tasks.c.status.in_(("pending", "running")),
            )
        ).all()
    return [str(row[0]) for row in rows]


def _create_tables(engine: Engine) -> None:
    try:
        metadata.create_all(engine, tables=list(TABLES))
    except DatabaseError:
        metadata.create_all(engine, tables=list(TABLES))
