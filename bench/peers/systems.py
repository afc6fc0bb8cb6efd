"""The two systems under load, started the same way for each run: Grey and the FastAPI + Celery peer.

Each is a `System`: an HTTP `Target` for the load tool, its record to count completions in
(Grey's `tasks` table; the peer's `celery_taskmeta`, Celery's SQLAlchemy result table), and
`stop`. Both use the bench's Redis database (`bench.cluster.REDIS_URL`, flushed before each
start) and a database of the same engine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bench.cluster import REDIS_URL, ROOT, Grey, _stop, flush
from bench.peers.load import Target
from bench.serving import free_port, wait_listening

NOOP = {"type": "stateless", "payload": {"function": "noop"}}
#: A run's tasks counted as finished once the completed count has not moved for this long.
SETTLED_SECONDS = 1.5
#: The peer's HTTP server: one uvicorn process with uvloop and httptools, as Grey's gateway.
UVICORN = [sys.executable, "-m", "uvicorn", "bench.peers.api:app", "--host", "127.0.0.1", "--loop", "uvloop"]
UVICORN += ["--http", "httptools", "--no-access-log", "--log-level", "warning"]
#: The peer's worker: Celery's default (prefork) pool. Gossip, mingle and the worker
#: heartbeat are off (one worker: nobody to talk to), which only spares the peer work.
CELERY_WORKER = [sys.executable, "-m", "celery", "-A", "bench.peers.celery_app", "worker"]
CELERY_WORKER += ["--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]


class System(Protocol):
    name: str
    target: Target

    def completions(self) -> tuple[int, datetime | None]:
        """(tasks completed, when the last completed) from the system's own record."""
        ...

    def unfinished(self) -> int:
        """Tasks not yet completed that the system knows of (records or queued messages)."""
        ...

    def sample_ids(self, limit: int) -> list[str]: ...

    def completed_at(self, ids: list[str]) -> dict[str, datetime]:
        """When each of these tasks completed, per the system's record (absent: not completed)."""
        ...

    def stop(self) -> None: ...


def as_utc(moment: datetime) -> datetime:
    """Naive timestamps (Celery's `date_done` column has no time zone) are UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def wait_settled(system: System, timeout: float = 180) -> tuple[int, datetime | None]:
    """Until nothing is left to run and the completed count has stopped moving."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while True:
        count, at = system.completions()
        if count != last:
            last, since = count, time.monotonic()
        elif system.unfinished() == 0 and time.monotonic() - since >= SETTLED_SECONDS:
            return count, at
        if time.monotonic() > deadline:
            raise SystemExit(f"{system.name}: tasks did not finish ({count} completed)")
        time.sleep(0.1)


class GreySystem:
    """Grey as bench.runtime runs it: a gateway process and a worker process (`threads`)."""

    name = "Grey"

    def __init__(self, database_url: str, threads: int, workdir: Path) -> None:
        self.grey = Grey(database_url, threads, workdir)
        self.target = Target(
            name=self.name,
            base_url=self.grey.url,
            submit_path="/v1/tasks",
            body=NOOP,
            status_path="/v1/tasks/{task_id}",
            done=frozenset({"completed"}),
            failed=frozenset({"failed", "cancelled", "timeout"}),
            headers={"Authorization": f"Bearer {self.grey.key}"},
        )

    def completions(self) -> tuple[int, datetime | None]:
        from sqlalchemy import func, select

        from runtime.store.schema import tasks

        stmt = select(func.count(), func.max(tasks.c.completed_at)).where(tasks.c.status == "completed")
        with self.grey.store.engine.connect() as conn:
            count, last = conn.execute(stmt).one()
        return int(count), None if last is None else as_utc(last)

    def unfinished(self) -> int:
        counts = self.grey.counts()
        return counts["pending"] + counts["running"]

    def sample_ids(self, limit: int) -> list[str]:
        from sqlalchemy import select

        from runtime.store.schema import tasks

        with self.grey.store.engine.connect() as conn:
            return list(conn.execute(select(tasks.c.task_id).limit(limit)).scalars())

    def completed_at(self, ids: list[str]) -> dict[str, datetime]:
        from sqlalchemy import select

        from runtime.store.schema import tasks

        stmt = select(tasks.c.task_id, tasks.c.completed_at).where(
            tasks.c.task_id.in_(ids), tasks.c.status == "completed"
        )
        with self.grey.store.engine.connect() as conn:
            return {task_id: as_utc(at) for task_id, at in conn.execute(stmt)}

    def stop(self) -> None:
        self.grey.stop()


def _sqlalchemy_url(database_url: str) -> str:
    if database_url.startswith("postgresql://"):
        return "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    return database_url


class PeerSystem:
    """uvicorn serving bench.peers.api and a Celery worker (`--concurrency threads`, prefork)."""

    name = "FastAPI + Celery"

    def __init__(self, database_url: str, threads: int, workdir: Path, start_timeout: float = 60) -> None:
        from celery.backends.database.models import Task
        from sqlalchemy import create_engine

        flush(REDIS_URL)
        self.engine = create_engine(_sqlalchemy_url(database_url))
        Task.metadata.create_all(self.engine)  # as Celery's backend does on first use, once here
        self.table = Task.__table__
        self.port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PEER_BROKER_URL": REDIS_URL,
            "PEER_DATABASE_URL": database_url,
        }
        log = (workdir / "peer.log").open("ab")
        self.api = subprocess.Popen(
            [*UVICORN, "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.worker = subprocess.Popen(
            [*CELERY_WORKER, "--concurrency", str(threads)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.target = Target(
            name=self.name,
            base_url=f"http://127.0.0.1:{self.port}",
            submit_path="/tasks",
            body=NOOP,
            status_path="/tasks/{task_id}",
            done=frozenset({"SUCCESS"}),
            failed=frozenset({"FAILURE", "REVOKED"}),
        )
        try:
            wait_listening(self.port, start_timeout)
            self._wait_worker(start_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_worker(self, timeout: float) -> None:
        """Until a task submitted over HTTP has run (the worker's pool is up)."""
        import httpx

        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.target.base_url, timeout=timeout) as client:
            task_id = client.post("/tasks", json=NOOP).json()["task_id"]
            while client.get(f"/tasks/{task_id}").json()["status"] != "SUCCESS":
                if self.worker.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the Celery worker did not start")
                time.sleep(0.1)

    def completions(self) -> tuple[int, datetime | None]:
        from sqlalchemy import func, select

        stmt = select(func.count(), func.max(self.table.c.date_done)).where(self.table.c.status == "SUCCESS")
        with self.engine.connect() as conn:
            count, last = conn.execute(stmt).one()
        return int(count), None if last is None else as_utc(last)

    def unfinished(self) -> int:
        import redis

        client: Any = redis.Redis.from_url(REDIS_URL)
        return int(client.llen("celery")) + int(client.hlen("unacked"))

    def sample_ids(self, limit: int) -> list[str]:
        from sqlalchemy import select

        with self.engine.connect() as conn:
            return list(conn.execute(select(self.table.c.task_id).limit(limit)).scalars())

    def completed_at(self, ids: list[str]) -> dict[str, datetime]:
        from sqlalchemy import select

        table = self.table
        stmt = select(table.c.task_id, table.c.date_done).where(
            table.c.task_id.in_(ids), table.c.status == "SUCCESS"
        )
        with self.engine.connect() as conn:
            return {task_id: as_utc(at) for task_id, at in conn.execute(stmt)}

    def stop(self) -> None:
        _stop(self.worker, self.api)
        self.engine.dispose()
