"""The store: the record of every task, key, quota, webhook and node.

SQLAlchemy Core, synchronous: the async gateway calls it through a thread pool and
Dramatiq worker threads call it directly. One implementation for SQLite (embedded
default) and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DatabaseError

from runtime.store.cluster_events import ClusterEventRecord, ClusterEvents
from runtime.store.coordination import CoordinationRepository
from runtime.store.direct import DirectStatements
from runtime.store.engine import create_store_engine
from runtime.store.errors import (
    DuplicateIdempotencyKey,
    InvalidCursor,
    StoreError,
    TaskNotCancellable,
)
from runtime.store.figures import TaskFigures
from runtime.store.group_commit import GroupCommit
from runtime.store.isolation import IsolationRepository
from runtime.store.keys import KeyRepository
from runtime.store.lifecycle import TaskLifecycle
from runtime.store.logs import TaskLogRecord, TaskLogRepository
from runtime.store.nodes import NodeRepository
from runtime.store.quotas import QuotaRepository
from runtime.store.records import (
    DEFAULT_QUOTAS,
    TASK_STATUSES,
    UNFINISHED_STATUSES,
    ApiKeyRecord,
    LeaseRecord,
    NewTask,
    NodeRecord,
    QuotaRecord,
    TaskEvent,
    TaskPage,
    TaskRecord,
    WebhookRecord,
    new_task_id,
)
from runtime.store.scheduling import SchedulingQueries
from runtime.store.schema import metadata
from runtime.store.settings import SettingsRepository
from runtime.store.states import BatchRepository, StateRepository
from runtime.store.task_rows import ChangeListener, Listeners
from runtime.store.tasks import TaskRepository
from runtime.store.tee import AttestationRecord, ChallengeRecord, ProofRecord, TeeRepository
from runtime.store.webhooks import WebhookRepository


class Store:
    """The engine and one repository per table family; share one per process.

    Task rows have four: `tasks` (what tenants submit, read, list and cancel),
    `lifecycle` (the runtime's claims, transitions and progress), `scheduling` (what
    runs next, what to send again) and `figures` (counts for health and usage).
    `listeners` are told of every committed task event, whichever of them wrote it.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.listeners = Listeners()
        # Submits, claims, transitions and progress: the hot writes, group-committed together.
        self._writes = GroupCommit(DirectStatements(engine))
        self.tasks = TaskRepository(engine, self._writes, self.listeners)
        self.lifecycle = TaskLifecycle(engine, self._writes, self.listeners)
        self.scheduling = SchedulingQueries(engine)
        self.figures = TaskFigures(engine)
        self.keys = KeyRepository(engine)
        self.quotas = QuotaRepository(engine)
        self.webhooks = WebhookRepository(engine)
        self.nodes = NodeRepository(engine)
        self.settings = SettingsRepository(engine)
        self.states = StateRepository(engine)
        self.batches = BatchRepository(engine)
        self.coordination = CoordinationRepository(engine)
        self.tee = TeeRepository(engine)  # attestations, measurements, proofs (TEE pool)
        self.isolation = IsolationRepository(engine)  # refused cross-tenant reads
        self.logs = TaskLogRepository(engine)  # container tasks' output
        self.cluster_events = ClusterEvents(engine)  # what /ws/telemetry replays

    @classmethod
    def open(cls, url: str | URL) -> Store:
        """Connect and create missing tables (no migrations yet)."""
        engine = create_store_engine(url)
        try:
            create_tables(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    def dispose(self) -> None:
        """Close pooled connections (at shutdown, or in a forked child)."""
        self._writes.close()  # the write connection back to the pool first
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.dispose()


def create_tables(engine: Engine) -> None:
    """`create_all`, tolerant of other processes (gateway, workers) doing it at once.

    The existence check and the CREATE are not atomic: the loser of that race fails
    with "already exists", and a second pass then finds everything in place.
    """
    try:
        metadata.create_all(engine)
    except DatabaseError:
        metadata.create_all(engine)


__all__ = [
    "DEFAULT_QUOTAS",
    "TASK_STATUSES",
    "UNFINISHED_STATUSES",
    "ApiKeyRecord",
    "AttestationRecord",
    "BatchRepository",
    "ChallengeRecord",
    "ChangeListener",
    "ClusterEventRecord",
    "ClusterEvents",
    "CoordinationRepository",
    "DuplicateIdempotencyKey",
    "InvalidCursor",
    "IsolationRepository",
    "KeyRepository",
    "LeaseRecord",
    "Listeners",
    "NewTask",
    "NodeRecord",
    "NodeRepository",
    "ProofRecord",
    "QuotaRecord",
    "QuotaRepository",
    "SchedulingQueries",
    "SettingsRepository",
    "StateRepository",
    "Store",
    "StoreError",
    "TaskEvent",
    "TaskFigures",
    "TaskLifecycle",
    "TaskLogRecord",
    "TaskLogRepository",
    "TaskNotCancellable",
    "TaskPage",
    "TaskRecord",
    "TaskRepository",
    "TeeRepository",
    "WebhookRecord",
    "WebhookRepository",
    "create_store_engine",
    "create_tables",
    "new_task_id",
]
