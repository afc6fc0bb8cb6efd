"""Immutable rows handed out by the store, and what a submit hands in.

Frozen (fields cannot be rebound) with slots (cheap on the hot path). Container
fields are the decoded JSON; treat them as read-only.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from runtime.store.coltypes import utc_now

PENDING = "pending"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
TIMEOUT = "timeout"
TASK_STATUSES = (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT)
UNFINISHED_STATUSES = (PENDING, RUNNING)
"""Statuses a task can still leave: cancellable, and re-enqueued after a restart."""

CONTAINER_TASK = "container"
"""The task type that runs a command in an image (CloudAI's tasks): queued, placed and
executed apart from task functions."""

DEFAULT_QUOTAS: Mapping[str, int] = MappingProxyType(
    {
        "cpu_cores": 100,
        "memory_gb": 256,
        "max_concurrent_tasks": 10000,
        "max_queue_depth": 50000,
        "submit_rate_per_second": 1000,
    }
)
"""Quotas of a tenant nobody has configured (Grey Distributed, Get Quotas)."""


def new_task_id() -> str:
    return f"task_{uuid.uuid4()}"


@dataclass(frozen=True, slots=True)
class NewTask:
    """What submit provides; the id and creation time are fixed before the insert."""

    tenant_id: str
    type: str
    payload: dict[str, Any]
    priority: str = "normal"
    timeout_seconds: int = 300
    idempotency_key: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    tee_required: bool = False
    state_key: str | None = None
    dependencies: list[str] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    pool: str = "cpu"
    api: str = "grey"  # the API whose contract submitted it
    task_id: str = field(default_factory=new_task_id)
    created_at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One row of `tasks`, with its labels."""

    task_id: str
    tenant_id: str
    type: str
    status: str
    priority: str
    progress: int
    payload: dict[str, Any]
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    labels: dict[str, str]
    timeout_seconds: int
    idempotency_key: str | None
    state_key: str | None
    dependencies: list[str]
    resources: dict[str, Any]
    tee_required: bool
    tee_executed: bool
    proof_available: bool
    executed_on: str | None
    device_emulated: bool
    retry_count: int
    attempt: int
    pool: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    duration_ms: int | None
    queue_time_ms: int | None
    execution_time_ms: int | None
    cancel_reason: str | None
    updated_at: datetime
    event_seq: int = 0
    sent_at: datetime | None = None  # its message last sent (or due, for a delayed retry)
    lease_expires_at: datetime | None = None  # running: its attempt's lease
    api: str = "grey"  # the API that submitted it

    @property
    def finished(self) -> bool:
        return self.status not in UNFINISHED_STATUSES


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One transition or progress message of a task; `seq` orders a task's events."""

    task_id: str
    seq: int
    status: str
    progress: int
    message: str | None
    at: datetime


#: listTasks counts the matches over all pages up to this many; past it, `total` says
#: this figure and `total_exact` is false (counting every match grows with history).
TOTAL_CAP = 1000


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of listTasks: `total` counts every match over all pages, exactly when
    `total_exact`; else more than TOTAL_CAP match and `total` is TOTAL_CAP."""

    tasks: list[TaskRecord]
    total: int
    has_more: bool
    next_cursor: str | None
    total_exact: bool = True


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A stored API key: only the sha256 of the secret is kept."""

    key_id: str
    tenant_id: str
    key_hash: str
    scopes: list[str]
    created_at: datetime
    revoked: bool
    description: str | None


@dataclass(frozen=True, slots=True)
class QuotaRecord:
    """A tenant's quotas; `updated_at` is None while the defaults apply."""

    tenant_id: str
    cpu_cores: int
    memory_gb: int
    max_concurrent_tasks: int
    max_queue_depth: int
    submit_rate_per_second: int
    updated_at: datetime | None = None
    updated_reason: str | None = None

    @classmethod
    def defaults(cls, tenant_id: str) -> QuotaRecord:
        return cls(tenant_id, **DEFAULT_QUOTAS)  # type: ignore[arg-type]  # int fields by name

    def limits(self) -> dict[str, int]:
        """The five limits, keyed as in the `Quotas` schema."""
        return {name: getattr(self, name) for name in DEFAULT_QUOTAS}


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    webhook_id: str
    tenant_id: str
    url: str
    events: list[str]
    secret: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A registered process (gateway, worker, coordinator) and its last heartbeat."""

    node_id: str
    role: str
    status: str
    address: str
    started_at: datetime
    pool: str | None = None
    last_heartbeat: datetime | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    tasks_running: int = 0
    tee_enabled: bool = False
    is_leader: bool = False
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """A coordination lease: who holds it, in which term, until when."""

    name: str
    holder: str
    term: int
    expires_at: datetime
    acquired_at: datetime
