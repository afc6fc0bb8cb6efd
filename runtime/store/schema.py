"""Tables of the store (SQLAlchemy Core): the record of every task, key, quota and node.

No migrations yet: `Store.open` runs `metadata.create_all`, which creates missing tables and
never alters existing ones; a store made before a change of columns or indexes here must be
created afresh.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
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
    # Admission control (a tenant's pending/running counts without scanning its history)
    # and listTasks filtered by one status (keyset order within it: no sort, no walk).
    Index(None, "tenant_id", "status", "created_at", "task_id"),
    # listTasks filtered by type (CloudAI lists only `container` tasks), in keyset order.
    Index(None, "tenant_id", "type", "created_at", "task_id"),
    # listTasks filtered by pool and/or priority (the dashboard), in keyset order: one range
    # per (pool, priority), merged when only one of them is given (runtime.store.task_listing).
    Index(None, "tenant_id", "pool", "priority", "created_at", "task_id"),
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

# A task's labels, one row per key: what listTasks' `label=key=value` filter reads. The
# task's tenant and creation time are copied here (neither ever changes), so a label filter
# is one ordered range of the index below, newest first, whatever the tenant's history.
task_labels = Table(
    "task_labels",
    metadata,
    Column("task_id", String, ForeignKey("tasks.task_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String, primary_key=True),
    Column("value", String, nullable=False),
    Column("tenant_id", String, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "tenant_id", "key", "value", "created_at", "task_id"),
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

# -- TEE (runtime/execution/tee, runtime/store/tee.py) -------------------------------------

# Each TEE node's latest attestation: its quote over a nonce, and whether it verified.
tee_attestations = Table(
    "tee_attestations",
    metadata,
    Column("node_id", String, primary_key=True),
    Column("platform", String, nullable=False),  # sgx-sim
    Column("debug", Boolean, nullable=False),
    Column("mrenclave", String, nullable=False),  # hex
    Column("mrsigner", String, nullable=False),
    Column("quote", LargeBinary, nullable=False),
    Column("nonce", LargeBinary, nullable=False),
    Column("node_key", json_column_type(), nullable=False),  # securesystemslib key, with keyid
    Column("valid", Boolean, nullable=False),
    Column("reason", Text, nullable=True),  # why it is not valid
    Column("verified_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

# Measurement manifests by MRENCLAVE (the manifest's SHA-256): what proofs carry.
tee_measurements = Table(
    "tee_measurements",
    metadata,
    Column("mrenclave", String, primary_key=True),
    Column("manifest", json_column_type(), nullable=False),
)

# The proof of each task that completed in the TEE, written with its completion.
task_proofs = Table(
    "task_proofs",
    metadata,
    Column("task_id", String, ForeignKey("tasks.task_id", ondelete="CASCADE"), primary_key=True),
    Column("node_id", String, nullable=False),
    Column("platform", String, nullable=False),
    Column("debug", Boolean, nullable=False),
    Column("mrenclave", String, nullable=False),
    Column("mrsigner", String, nullable=False),
    Column("quote", LargeBinary, nullable=False),
    Column("nonce", LargeBinary, nullable=False),
    Column("node_key", json_column_type(), nullable=False),
    Column("receipt", json_column_type(), nullable=False),  # DSSE envelope
    Column("created_at", UtcDateTime, nullable=False),
)

# Fresh attestations asked of a node in another process (POST /v1/security/attestation):
# the gateway writes the challenge, the node answers in the row.
tee_challenges = Table(
    "tee_challenges",
    metadata,
    Column("challenge_id", String, primary_key=True),
    Column("node_id", String, nullable=False, index=True),
    Column("nonce", LargeBinary, nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("answered_at", UtcDateTime, nullable=True),
    Column("quote", LargeBinary, nullable=True),
    Column("signature", LargeBinary, nullable=True),
    Column("node_key", json_column_type(nullable=True), nullable=True),
    Column("error", Text, nullable=True),
)

# Refused cross-tenant reads: a tenant asked for another tenant's task by its id (404).
isolation_refusals = Table(
    "isolation_refusals",
    metadata,
    Column("tenant_id", String, primary_key=True),  # whose task it was
    Column("requester_id", String, primary_key=True),  # the tenant refused
    Column("count", Integer, nullable=False),
    Column("last_at", UtcDateTime, nullable=False),
)

# A container task's output (runtime/store/logs.py): the last bytes of its latest attempt.
task_logs = Table(
    "task_logs",
    metadata,
    Column("task_id", String, ForeignKey("tasks.task_id", ondelete="CASCADE"), primary_key=True),
    Column("attempt", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("total_bytes", Integer, nullable=False),  # all the bytes printed, kept or not
    Column("truncated", Boolean, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# -- Webhook deliveries (runtime/store/webhook_deliveries.py, runtime/execution/webhooks) ----

# What each task status tells subscribers (the contract's WebhookEvent).
TASK_EVENTS = {
    "running": "task.started",
    "completed": "task.completed",
    "failed": "task.failed",
    "cancelled": "task.cancelled",
    "timeout": "task.timeout",
}

# The outbox: one row per (event, subscribed webhook) still to deliver, written by the
# trigger below in the transaction of the task's transition; deleted once delivered.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("delivery_id", String, primary_key=True),  # msg_<32 hex>: the `webhook-id` header
    Column(
        "webhook_id",
        String,
        ForeignKey("webhooks.webhook_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("tenant_id", String, nullable=False),
    Column("task_id", String, nullable=False),
    Column("event", String, nullable=False),
    Column("status", String, nullable=False),  # the task's status the event reports
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    # Due at; while an attempt is in flight, the end of its claim (then due again).
    Column("next_attempt_at", UtcDateTime, nullable=False, index=True),
    Column("body", Text, nullable=True),  # fixed by the first attempt, resent as is
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
)

# Deliveries that ran out of attempts (or whose endpoint answered 410): listed and
# redelivered through the API.
webhook_dead_letters = Table(
    "webhook_dead_letters",
    metadata,
    Column("delivery_id", String, primary_key=True),
    Column("webhook_id", String, ForeignKey("webhooks.webhook_id", ondelete="CASCADE"), nullable=False),
    Column("tenant_id", String, nullable=False),
    Column("task_id", String, nullable=False),
    Column("event", String, nullable=False),
    Column("status", String, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("body", Text, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("dead_at", UtcDateTime, nullable=False),
    Index(None, "webhook_id", "dead_at", "delivery_id"),
)

# Webhooks whose endpoint answered 410 Gone: no new deliveries until one is redelivered.
webhook_disabled = Table(
    "webhook_disabled",
    metadata,
    Column("webhook_id", String, ForeignKey("webhooks.webhook_id", ondelete="CASCADE"), primary_key=True),
    Column("disabled_at", UtcDateTime, nullable=False),
    Column("reason", Text, nullable=False),
)


def _event_case(status: str) -> str:
    whens = " ".join(f"WHEN '{s}' THEN '{e}'" for s, e in TASK_EVENTS.items())
    return f"CASE {status} {whens} END"


_STATUSES = ", ".join(f"'{status}'" for status in TASK_EVENTS)
_DELIVERY_COLUMNS = (
    "delivery_id, webhook_id, tenant_id, task_id, event, status, occurred_at, attempts, next_attempt_at"
)
_NOT_DISABLED = "NOT EXISTS (SELECT 1 FROM webhook_disabled AS d WHERE d.webhook_id = w.webhook_id)"

# A trigger, so that every writer of a status (claims, outcomes, cancels, reconciler) writes
# the deliveries in its own transaction at the cost of one index probe of `webhooks` when
# the tenant has none, with no statement added to the hot path's Python side.
_SQLITE_TRIGGER = f"""
CREATE TRIGGER tasks_webhook_deliveries AFTER UPDATE OF status ON tasks FOR EACH ROW
WHEN NEW.status IS NOT OLD.status AND NEW.status IN ({_STATUSES})
BEGIN
  INSERT INTO webhook_deliveries ({_DELIVERY_COLUMNS})
  SELECT 'msg_' || lower(hex(randomblob(16))), w.webhook_id, w.tenant_id, NEW.task_id,
         {_event_case("NEW.status")}, NEW.status, NEW.updated_at, 0, NEW.updated_at
  FROM webhooks AS w
  WHERE w.tenant_id = NEW.tenant_id
    AND instr(w.events, '"' || {_event_case("NEW.status")} || '"') > 0
    AND {_NOT_DISABLED};
END
"""
_POSTGRESQL_FUNCTION = f"""
CREATE OR REPLACE FUNCTION tasks_webhook_deliveries() RETURNS trigger LANGUAGE plpgsql AS $body$
DECLARE
  wanted text := {_event_case("NEW.status")};
BEGIN
  INSERT INTO webhook_deliveries ({_DELIVERY_COLUMNS})
  SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), w.webhook_id, w.tenant_id, NEW.task_id,
         wanted, NEW.status, NEW.updated_at, 0, NEW.updated_at
  FROM webhooks AS w
  WHERE w.tenant_id = NEW.tenant_id
    AND strpos(w.events::text, '"' || wanted || '"') > 0
    AND {_NOT_DISABLED};
  RETURN NULL;
END
$body$
"""
_POSTGRESQL_TRIGGER = f"""
CREATE TRIGGER tasks_webhook_deliveries AFTER UPDATE OF status ON tasks FOR EACH ROW
WHEN (NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ({_STATUSES}))
EXECUTE FUNCTION tasks_webhook_deliveries()
"""


_TRIGGER_DDL = {
    "sqlite": ("DROP TRIGGER IF EXISTS tasks_webhook_deliveries", _SQLITE_TRIGGER),
    "postgresql": (
        _POSTGRESQL_FUNCTION,
        "DROP TRIGGER IF EXISTS tasks_webhook_deliveries ON tasks",
        _POSTGRESQL_TRIGGER,
    ),
}


@event.listens_for(metadata, "after_create")
def _create_delivery_trigger(_metadata: MetaData, connection: Connection, **kw: Any) -> None:
    """In the `create_all` that creates the outbox, once every table exists."""
    if webhook_deliveries in kw.get("tables", ()):
        for statement in _TRIGGER_DDL.get(connection.dialect.name, ()):
            connection.exec_driver_sql(statement)
