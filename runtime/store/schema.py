"""Tables of the store (SQLAlchemy Core): the record of every task, key, quota and node.

No migrations yet: `Store.open` runs `metadata.create_all`.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from runtime.store.coltypes import UtcDateTime, json_column_type

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

tasks = Table(
    "tasks",
    metadata,
    Column("task_id", String, primary_key=True),  # task_<uuid4>
    Column("tenant_id", String, nullable=False),
    Column("type", String, nullable=False),
    Column("status", String, nullable=False),
    Column("priority", String, nullable=False),
    Column("progress", Integer, nullable=False, default=0),
    Column("payload", json_column_type(), nullable=False),
    Column("result", json_column_type(nullable=True), nullable=True),
    Column("error", json_column_type(nullable=True), nullable=True),
    # A copy of the labels for reading; filtering goes through task_labels.
    Column("labels", json_column_type(), nullable=False),
    Column("timeout_seconds", Integer, nullable=False),
    Column("idempotency_key", String, nullable=True),
    Column("state_key", String, nullable=True),
    Column("dependencies", json_column_type(), nullable=False),
    Column("resources", json_column_type(), nullable=False),
    Column("tee_required", Boolean, nullable=False),
    Column("tee_executed", Boolean, nullable=False, default=False),
    Column("proof_available", Boolean, nullable=False, default=False),
    Column("executed_on", String, nullable=True),
    Column("device_emulated", Boolean, nullable=False, default=False, server_default=false()),
    Column("retry_count", Integer, nullable=False, default=0, server_default="0"),
    Column("attempt", Integer, nullable=False, default=0, server_default="0"),
    Column("pool", String, nullable=False, default="cpu", server_default="cpu"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("completed_at", UtcDateTime, nullable=True),
    Column("cancelled_at", UtcDateTime, nullable=True),
    Column("duration_ms", Integer, nullable=True),
    Column("queue_time_ms", Integer, nullable=True),
    Column("execution_time_ms", Integer, nullable=True),
    Column("cancel_reason", Text, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    # Bumped by every transition and progress report: the seq of the task's last event.
    Column("event_seq", Integer, nullable=False, default=0, server_default="0"),
    # Leases (runtime.execution.reconciler): when the task's message was last sent (or is
    # due, for a delayed retry), and until when the running attempt is leased to its worker.
    Column("sent_at", UtcDateTime, nullable=True),
    Column("lease_expires_at", UtcDateTime, nullable=True),
    # The API whose contract submitted the task (`grey`, `openmcp`, ...): metrics label it.
    Column("api", String, nullable=False, default="grey", server_default="grey"),
    # NULL keys are distinct on both backends: only real keys deduplicate.
    UniqueConstraint("tenant_id", "idempotency_key"),
    # listTasks: tenant, newest first, keyset on (created_at, task_id).
    Index(None, "tenant_id", "created_at", "task_id"),
    # Runtime: unfinished tasks oldest first, queue depth, oldest pending.
    Index(None, "status", "created_at"),
    # Admission control: a tenant's pending/running counts without scanning its history.
    Index(None, "tenant_id", "status"),
    # Throughput: tasks finished in the last hour.
    Index(None, "completed_at"),
    # Stateful tasks: the unfinished tasks of one state key, in submission order.
    Index(None, "tenant_id", "state_key", "created_at"),
)

# Every transition and progress message of a task, in order: what streams replay.
task_events = Table(
    "task_events",
    metadata,
    Column("task_id", String, ForeignKey("tasks.task_id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("status", String, nullable=False),
    Column("progress", Integer, nullable=False),
    Column("message", Text, nullable=True),
    Column("at", UtcDateTime, nullable=False),
    # SQLite: the primary key is the table (one B-tree, not a rowid table plus an index):
    # every transition appends a row, so that is one page write less per transition.
    sqlite_with_rowid=False,
)

# The persisted state of stateful tasks, one row per (tenant, state_key).
task_states = Table(
    "task_states",
    metadata,
    Column("tenant_id", String, primary_key=True),
    Column("state_key", String, primary_key=True),
    Column("value", json_column_type(nullable=True), nullable=True),
    Column("version", Integer, nullable=False),
    Column("updated_by", String, nullable=False),  # the task that wrote it
    Column("updated_at", UtcDateTime, nullable=False),
)

# Finished items of batch tasks: one row per item, written once (redeliveries count once).
batch_items = Table(
    "batch_items",
    metadata,
    Column("task_id", String, ForeignKey("tasks.task_id", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("status", String, nullable=False),  # completed | failed
    Column("result", json_column_type(nullable=True), nullable=True),
    Column("error", json_column_type(nullable=True), nullable=True),
    Column("finished_at", UtcDateTime, nullable=False),
)

task_labels = Table(
    "task_labels",
    metadata,
    Column("task_id", String, ForeignKey("tasks.task_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String, primary_key=True),
    Column("value", String, nullable=False),
    Index(None, "key", "value"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String, primary_key=True),
    Column("tenant_id", String, nullable=False, index=True),
    Column("key_hash", String, nullable=False, unique=True),  # sha256 hex of the full key
    Column("scopes", json_column_type(), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("description", Text, nullable=True),
)

quotas = Table(
    "quotas",
    metadata,
    Column("tenant_id", String, primary_key=True),
    Column("cpu_cores", Integer, nullable=False),
    Column("memory_gb", Integer, nullable=False),
    Column("max_concurrent_tasks", Integer, nullable=False),
    Column("max_queue_depth", Integer, nullable=False),
    Column("submit_rate_per_second", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=True),
    Column("updated_reason", Text, nullable=True),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("webhook_id", String, primary_key=True),  # wh_<hex>
    Column("tenant_id", String, nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("events", json_column_type(), nullable=False),
    Column("secret", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

nodes = Table(
    "nodes",
    metadata,
    Column("node_id", String, primary_key=True),
    Column("role", String, nullable=False),
    Column("status", String, nullable=False),
    Column("pool", String, nullable=True),
    Column("address", String, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("last_heartbeat", UtcDateTime, nullable=True),
    Column("resources", json_column_type(), nullable=False),
    Column("tasks_running", Integer, nullable=False, default=0),
    Column("tee_enabled", Boolean, nullable=False, default=False),
    Column("is_leader", Boolean, nullable=False, default=False),
    Column("info", json_column_type(), nullable=False),  # GPU devices, TEE platform, ...
)

settings = Table(
    "settings",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),
)

# Leases held by one node of the cluster at a time, one row per name (e.g. `reconciler`):
# taken and renewed with a conditional UPDATE; `term` grows whenever the holder changes.
coordination = Table(
    "coordination",
    metadata,
    Column("name", String, primary_key=True),
    Column("holder", String, nullable=False),
    Column("term", Integer, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("acquired_at", UtcDateTime, nullable=False),  # when this term began
)
