"""Profiler sessions, the frames nodes sample for them, and the nodes that sample (gswarm's profiler).

Sessions are a cluster resource, not a tenant's: the nodes' GPUs and CPUs are shared
hardware, and a session makes every node sample, so starting or stopping one takes
`cluster:admin` and any tenant with `cluster:read` sees them. A name is unique among the
active sessions (a partial unique index: two concurrent starts of one name cannot both
win); a stopped name may be started again, as a new session.

A frame is one node's sample for one session (`payload`: the JSON the sampler built). It is
written only while its session is active, in the transaction that adds one to the
session's `frames_collected`, so the count is every frame ever written (retention does not
lower it) and no frame lands after a stop.

Retention is bounded, by the writers (`prune`): each session keeps its newest
`GREY_PROFILER_FRAMES_PER_SESSION` frames (default 10 000), and only the newest
`GREY_PROFILER_RETAINED_SESSIONS` stopped sessions (default 100) keep frames at all (their
rows, with their counts, stay).

Clients are the nodes running a sampler: their GPUs (hardware, emulated, or none) and the
sampler's own heartbeat (`last_update`).
"""

from __future__ import annotations

import os
import uuid
import weakref
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Index,
    Integer,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DatabaseError, IntegrityError

from runtime.store.coltypes import UtcDateTime, json_column_type
from runtime.store.errors import StoreError
from runtime.store.schema import metadata
from runtime.store.upsert import dialect_insert

#: Frames kept per session (the newest), `GREY_PROFILER_FRAMES_PER_SESSION`.
FRAMES_PER_SESSION = int(os.environ.get("GREY_PROFILER_FRAMES_PER_SESSION") or 10_000)
#: Stopped sessions whose frames are kept (the newest), `GREY_PROFILER_RETAINED_SESSIONS`.
RETAINED_SESSIONS = int(os.environ.get("GREY_PROFILER_RETAINED_SESSIONS") or 100)

profiler_sessions = Table(
    "profiler_sessions",
    metadata,
    Column("session_id", String, primary_key=True),  # prof_<uuid4>
    Column("name", String, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("sampling_frequency_ms", Integer, nullable=False),
    Column("enable_bandwidth_profiling", Boolean, nullable=False),
    Column("enable_nvlink_profiling", Boolean, nullable=False),
    Column("frames_collected", BigInteger, nullable=False, default=0),
    Column("started_by", String, nullable=True),  # the tenant of the credential that started it
    Column("started_at", UtcDateTime, nullable=False),
    Column("stopped_at", UtcDateTime, nullable=True),
    Index(None, "started_at"),
)
# One active session per name (the 409 of a second start), whatever the race.
Index(
    "uq_profiler_sessions_active_name",
    profiler_sessions.c.name,
    unique=True,
    sqlite_where=profiler_sessions.c.active,
    postgresql_where=profiler_sessions.c.active,
)

profiler_frames = Table(
    "profiler_frames",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("session_id", String, nullable=False),
    Column("node_id", String, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("payload", json_column_type(), nullable=False),
    Index(None, "session_id", "seq"),
    Index(None, "node_id", "seq"),
)

profiler_clients = Table(
    "profiler_clients",
    metadata,
    Column("node_id", String, primary_key=True),
    Column("hostname", String, nullable=False),
    Column("gpu_source", String, nullable=False),  # hardware | emulated | absent
    Column("gpus", json_column_type(), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("last_update", UtcDateTime, nullable=False),
    Column("connected", Boolean, nullable=False),  # False once its sampler stopped cleanly
)

TABLES = (profiler_sessions, profiler_frames, profiler_clients)


class SessionActive(StoreError):
    """A session of that name is already active."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a profiling session named {name!r} is already active")
        self.name = name


class SessionNotActive(StoreError):
    """No active session of that name (never started, or already stopped)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no active profiling session named {name!r}")
        self.name = name


@dataclass(frozen=True, slots=True)
class SessionRecord:
    session_id: str
    name: str
    active: bool
    sampling_frequency_ms: int
    enable_bandwidth_profiling: bool
    enable_nvlink_profiling: bool
    frames_collected: int
    started_by: str | None
    started_at: datetime
    stopped_at: datetime | None


@dataclass(frozen=True, slots=True)
class FrameRecord:
    seq: int
    session_id: str
    node_id: str
    at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ClientRecord:
    node_id: str
    hostname: str
    gpu_source: str
    gpus: list[dict[str, Any]]
    started_at: datetime
    last_update: datetime
    connected: bool = True


def new_session_id() -> str:
    return f"prof_{uuid.uuid4()}"


_REPOSITORIES: weakref.WeakKeyDictionary[Engine, ProfilerRepository] = weakref.WeakKeyDictionary()


class ProfilerRepository:
    """Sessions, frames and clients on one engine; `of(engine)` shares one per engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        _create_tables(engine)

    @classmethod
    def of(cls, engine: Engine) -> ProfilerRepository:
        """The engine's repository (its tables created once, if `Store.open` had not)."""
        repository = _REPOSITORIES.get(engine)
        if repository is None:
            repository = _REPOSITORIES[engine] = cls(engine)
        return repository

    # -- sessions ---------------------------------------------------------------------------

    def start(
        self,
        name: str,
        *,
        sampling_frequency_ms: int,
        enable_bandwidth_profiling: bool,
        enable_nvlink_profiling: bool,
        started_by: str | None,
        now: datetime,
    ) -> SessionRecord:
        """A new active session; SessionActive when one of that name is active."""
        record = SessionRecord(
            session_id=new_session_id(),
            name=name,
            active=True,
            sampling_frequency_ms=sampling_frequency_ms,
            enable_bandwidth_profiling=enable_bandwidth_profiling,
            enable_nvlink_profiling=enable_nvlink_profiling,
            frames_collected=0,
            started_by=started_by,
            started_at=now,
            stopped_at=None,
        )
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(profiler_sessions).values(_session_row(record)))
        except IntegrityError:
            raise SessionActive(name) from None
        return record

    def stop(self, name: str, now: datetime) -> SessionRecord:
        """Stops the active session of that name; SessionNotActive when there is none."""
        table = profiler_sessions
        stmt = (
            update(table)
            .where(table.c.name == name, table.c.active)
            .values(active=False, stopped_at=now)
            .returning(*table.c)
        )
        with self._engine.begin() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            raise SessionNotActive(name)
        self.prune_stopped()
        return SessionRecord(**row._mapping)

    def sessions(self, active: bool | None = None, limit: int = 1000) -> list[SessionRecord]:
        """Newest first; only the active (or stopped) ones when `active` says so."""
        table = profiler_sessions
        stmt = select(table).order_by(table.c.started_at.desc(), table.c.session_id).limit(limit)
        if active is not None:
            stmt = stmt.where(table.c.active if active else ~table.c.active)
        with self._engine.connect() as conn:
            return [SessionRecord(**row._mapping) for row in conn.execute(stmt)]

    def active(self) -> list[SessionRecord]:
        """The active sessions, newest first."""
        return self.sessions(active=True)

    def session_names(self, session_ids: Collection[str]) -> dict[str, str]:
        """Session id → name, for the ids that exist."""
        table = profiler_sessions
        stmt = select(table.c.session_id, table.c.name).where(table.c.session_id.in_(list(session_ids)))
        with self._engine.connect() as conn:
            return {row.session_id: row.name for row in conn.execute(stmt)}

    # -- frames -----------------------------------------------------------------------------

    def add_frames(
        self, node_id: str, at: datetime, payload: dict[str, Any], session_ids: Sequence[str]
    ) -> list[str]:
        """One frame of `payload` for each of `session_ids` still active, each counted in its
        session, in one transaction; returns the sessions written to."""
        if not session_ids:
            return []
        table = profiler_sessions
        counted = (
            update(table)
            .where(table.c.session_id.in_(list(session_ids)), table.c.active)
            .values(frames_collected=table.c.frames_collected + 1)
            .returning(table.c.session_id)
        )
        with self._engine.begin() as conn:
            written = sorted(conn.execute(counted).scalars())
            if written:
                conn.execute(
                    insert(profiler_frames),
                    [
                        {"session_id": sid, "node_id": node_id, "at": at, "payload": payload}
                        for sid in written
                    ],
                )
        return written

    def frames(self, session_id: str, limit: int = 1000) -> list[FrameRecord]:
        """The session's retained frames, oldest first (at most `limit`, the newest ones)."""
        table = profiler_frames
        newest = (
            select(table).where(table.c.session_id == session_id).order_by(table.c.seq.desc()).limit(limit)
        )
        with self._engine.connect() as conn:
            rows = list(conn.execute(newest))
        return [FrameRecord(**row._mapping) for row in reversed(rows)]

    def latest_frames(self) -> list[FrameRecord]:
        """The newest retained frame of each node, by node id."""
        table = profiler_frames
        newest = select(func.max(table.c.seq)).group_by(table.c.node_id).scalar_subquery()
        stmt = select(table).where(table.c.seq.in_(newest)).order_by(table.c.node_id)
        with self._engine.connect() as conn:
            return [FrameRecord(**row._mapping) for row in conn.execute(stmt)]

    def prune(self, session_id: str, keep: int = FRAMES_PER_SESSION) -> int:
        """Deletes all but the newest `keep` frames of the session; how many went."""
        table = profiler_frames
        cutoff = (
            select(table.c.seq)
            .where(table.c.session_id == session_id)
            .order_by(table.c.seq.desc())
            .offset(keep)
            .limit(1)
        )
        with self._engine.begin() as conn:
            bound = conn.execute(cutoff).scalar_one_or_none()
            if bound is None:
                return 0
            stmt = delete(table).where(table.c.session_id == session_id, table.c.seq <= bound)
            return int(conn.execute(stmt).rowcount or 0)

    def prune_stopped(self, keep_sessions: int = RETAINED_SESSIONS) -> int:
        """Deletes the frames of stopped sessions older than the newest `keep_sessions` stopped ones."""
        sessions, frames = profiler_sessions, profiler_frames
        kept = (
            select(sessions.c.session_id)
            .where(~sessions.c.active)
            .order_by(sessions.c.stopped_at.desc(), sessions.c.session_id)
            .limit(keep_sessions)
        )
        stopped = select(sessions.c.session_id).where(~sessions.c.active)
        stmt = delete(frames).where(frames.c.session_id.in_(stopped), frames.c.session_id.not_in(kept))
        with self._engine.begin() as conn:
            return int(conn.execute(stmt).rowcount or 0)

    # -- clients ----------------------------------------------------------------------------

    def register(self, client: ClientRecord) -> None:
        """A node's sampler starts (again: its row is replaced)."""
        row = {
            "node_id": client.node_id,
            "hostname": client.hostname,
            "gpu_source": client.gpu_source,
            "gpus": client.gpus,
            "started_at": client.started_at,
            "last_update": client.last_update,
            "connected": True,
        }
        with self._engine.begin() as conn:
            stmt = dialect_insert(conn, profiler_clients).values(row)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[profiler_clients.c.node_id],
                    set_={name: value for name, value in row.items() if name != "node_id"},
                )
            )

    def heartbeat(self, node_id: str, now: datetime) -> bool:
        """The sampler of `node_id` is alive; False when it is not registered."""
        stmt = (
            update(profiler_clients)
            .where(profiler_clients.c.node_id == node_id)
            .values(last_update=now, connected=True)
        )
        with self._engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def disconnect(self, node_id: str) -> None:
        """Its sampler stopped cleanly (the worker stopped)."""
        stmt = update(profiler_clients).where(profiler_clients.c.node_id == node_id).values(connected=False)
        with self._engine.begin() as conn:
            conn.execute(stmt)

    def clients(self, since: datetime | None = None) -> list[ClientRecord]:
        """Clients heard from since `since` (all when None), by node id."""
        stmt = select(profiler_clients).order_by(profiler_clients.c.node_id)
        if since is not None:
            stmt = stmt.where(profiler_clients.c.last_update >= since)
        with self._engine.connect() as conn:
            return [ClientRecord(**row._mapping) for row in conn.execute(stmt)]


def _session_row(record: SessionRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in SessionRecord.__slots__}


def _create_tables(engine: Engine) -> None:
    """The profiler's tables, where `Store.open` ran before this module was imported;
    tolerant of another process creating them at the same moment."""
    try:
        metadata.create_all(engine, tables=list(TABLES))
    except DatabaseError:
        metadata.create_all(engine, tables=list(TABLES))
