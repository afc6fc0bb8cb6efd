"""The peer's Celery side, configured as Celery's documentation recommends for this job.

- Broker: Redis (`broker_url`, the same server Grey uses). Result backend: SQLAlchemy
  (`result_backend = "db+<database url>"`, Celery's "Database backend" page), on the same
  engine as Grey's store (a SQLite file or PostgreSQL): that table is the peer's durable
  record of each task's state, which its HTTP API reads.
- `task_track_started = True`: the record says STARTED while the task runs, as Grey's says
  running (Celery's configuration reference).
- `task_acks_late = True` with `task_reject_on_worker_lost = True`: the message is acked
  after the task ran, so a worker that dies re-delivers it: at-least-once, which is Grey's
  guarantee too (Celery's FAQ and "Tasks" guide recommend this for idempotent tasks).
- JSON serializer (the default), UTC timestamps (the default).
- Worker: `celery -A bench.peers.celery_app worker --concurrency N` with Celery's default
  pool (prefork, N processes) and default prefetch multiplier (4).

The task does nothing, like Grey's `noop` function. Configuration comes from the
environment (`PEER_BROKER_URL`, `PEER_DATABASE_URL`) so the bench can point it anywhere.
"""

from __future__ import annotations

import os

from celery import Celery

BROKER_URL = os.environ.get("PEER_BROKER_URL", "redis://127.0.0.1:6379/10")
DATABASE_URL = os.environ.get("PEER_DATABASE_URL", "sqlite:////tmp/peer-results.db")


def result_backend(database_url: str) -> str:
    """Celery's SQLAlchemy backend URL for a SQLAlchemy database URL (`db+...`)."""
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    return f"db+{database_url}"


app = Celery("peer", broker=BROKER_URL, backend=result_backend(DATABASE_URL))
app.conf.update(
    task_track_started=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    enable_utc=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="peer.noop")
def noop() -> None:
    """Does nothing: what is measured is the system around the task."""
    return None
