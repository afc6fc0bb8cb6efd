"""What the chaos suite sees: submit answers, the store's task rows and events, the ledger.

The store is read with plain SQL on its tables (not through the runtime's repositories),
so the suite judges the runtime from outside: a task's `completed` transition is a row of
`task_events`, a run is a line of the ledger the `chaos_run` function appends to.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from runtime.store.schema import task_events, tasks

TERMINAL = ("completed", "failed", "cancelled", "timeout")
UNFINISHED = ("pending", "running")
FUNCTION = "chaos_run"


# -- the client's side ----------------------------------------------------------------------


@dataclass
class Answer:
    """One submit and what came back: a status, or `error` when no answer came at all."""

    at: float  # seconds since the scenario started
    gateway: int
    phase: str
    status: int | None
    task_id: str | None = None
    code: str = ""
    error: str = ""

    @property
    def accepted(self) -> bool:
        """The client holds a task id: 201, or 503 naming the stored task."""
        return self.task_id is not None and self.status in (201, 503)


class Client:
    """Submits `chaos_run` tasks over REST and keeps every answer."""

    def __init__(self, urls: list[str], key: str, started: float, timeout: float = 15) -> None:
        self.urls, self.key, self.started, self.timeout = urls, key, started, timeout
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._clients: list[httpx.Client] = []  # one per thread that submitted

    def _http(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = httpx.Client(timeout=self.timeout, headers={"X-API-Key": self.key})
            with self._lock:
                self._clients.append(client)
        return client

    def submit(self, gateway: int, seconds: float, phase: str, priority: str = "normal") -> Answer:
        body = {
            "type": "stateless",
            "priority": priority,
            "payload": {"function": FUNCTION, "data": {"seconds": seconds, "tag": phase}},
            "timeout_seconds": 600,
            "labels": {"chaos": phase},
        }
        at = time.monotonic() - self.started
        try:
            response = self._http().post(f"{self.urls[gateway]}/v1/tasks", json=body)
        except httpx.HTTPError as error:
            answer = Answer(at, gateway, phase, None, error=f"{type(error).__name__}: {error}"[:200])
        else:
            answer = _answer(at, gateway, phase, response)
        with self._lock:
            self.answers.append(answer)
        return answer

    def accepted(self) -> list[str]:
        with self._lock:
            return [a.task_id for a in self.answers if a.accepted and a.task_id]

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()


def _answer(at: float, gateway: int, phase: str, response: httpx.Response) -> Answer:
    try:
        body: Any = response.json()
    except ValueError:
        body = {}
    if response.status_code == 201:
        return Answer(at, gateway, phase, 201, task_id=body.get("task_id"))
    error = body.get("error", {}) if isinstance(body, dict) else {}
    details = error.get("details") or {}
    return Answer(
        at,
        gateway,
        phase,
        response.status_code,
        task_id=details.get("task_id"),
        code=str(error.get("code", "")),
        error=str(error.get("message", response.text))[:200],
    )


@dataclass
class StreamWatch:
    """`GET /v1/tasks/{id}/stream` read on a thread: its events, and how it ended."""

    url: str
    key: str
    timeout: float
    events: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    ended: str = ""  # "closed" (the server ended it) or the error
    opened: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> StreamWatch:
        self._thread = threading.Thread(target=self._read, name="chaos-stream", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        import json

        timeout = httpx.Timeout(5.0, read=self.timeout)
        try:
            with (
                httpx.Client(timeout=timeout, headers={"X-API-Key": self.key}) as http,
                http.stream("GET", self.url) as response,
            ):
                if response.status_code != 200:
                    self.ended = f"answered {response.status_code}"
                    return
                event = ""
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        event = line.split(":", 1)[1].strip()
                        self.events.append(event)
                    elif line.startswith("data:") and event == "status":
                        self.statuses.append(json.loads(line[5:]).get("status", ""))
                        self.opened.set()
            self.ended = "closed"
        except (httpx.HTTPError, ValueError) as error:
            self.ended = f"{type(error).__name__}: {error}"[:200]
        finally:
            self.opened.set()

    def join(self, timeout: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is not None and not self._thread.is_alive()

    @property
    def done(self) -> bool:
        """The stream's last event was the final `event: done`."""
        return bool(self.events) and self.events[-1] == "done"


# -- the store's side -----------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRow:
    task_id: str
    status: str
    attempt: int
    retry_count: int
    executed_on: str | None
    error: Any


class Observer:
    """Reads the store's tasks and task events; `None` answers while the store is down."""

    def __init__(self, database_url: str) -> None:
        connect_args: dict[str, Any] = {}
        if database_url.startswith("postgresql"):
            connect_args = {"connect_timeout": 3}
        self.engine: Engine = create_engine(database_url, pool_pre_ping=True, connect_args=connect_args)

    def statuses(self) -> dict[str, str] | None:
        try:
            with self.engine.connect() as conn:
                return dict(conn.execute(select(tasks.c.task_id, tasks.c.status)).tuples().all())
        except SQLAlchemyError:
            return None

    def rows(self) -> dict[str, TaskRow]:
        stmt = select(
            tasks.c.task_id,
            tasks.c.status,
            tasks.c.attempt,
            tasks.c.retry_count,
            tasks.c.executed_on,
            tasks.c.error,
        )
        with self.engine.connect() as conn:
            return {row[0]: TaskRow(*row) for row in conn.execute(stmt).tuples()}

    def terminal_events(self) -> dict[str, Counter[str]]:
        """Per task, how many events moved it to each terminal status."""
        stmt = (
            select(task_events.c.task_id, task_events.c.status, func.count())
            .where(task_events.c.status.in_(TERMINAL))
            .group_by(task_events.c.task_id, task_events.c.status)
        )
        found: dict[str, Counter[str]] = defaultdict(Counter)
        with self.engine.connect() as conn:
            for task_id, status, count in conn.execute(stmt).tuples():
                found[task_id][status] += count
        return found

    def history(self, task_id: str, last: int = 4) -> list[str]:
        """The task's last events, oldest first, as `status: message`."""
        stmt = (
            select(task_events.c.status, task_events.c.message)
            .where(task_events.c.task_id == task_id)
            .order_by(task_events.c.seq.desc())
            .limit(last)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).tuples().all()
        return [f"{status}: {message or ''}".strip() for status, message in reversed(rows)] or ["none"]

    def dispose(self) -> None:
        self.engine.dispose()


def read_ledger(path: Path) -> dict[str, Counter[str]]:
    """Per task id, its `start` and `end` lines in the chaos ledger."""
    runs: dict[str, Counter[str]] = defaultdict(Counter)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return runs
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            runs[parts[1]][parts[0]] += 1
    return runs


def log_evidence(logs: list[Path], limit: int = 8) -> list[str]:
    """The first distinct warning, error and traceback lines of the processes' logs."""
    markers = ("ERROR", "CRITICAL", "Traceback", "WARNING", "Error:", "exited (")
    found: list[str] = []
    seen: set[str] = set()
    for log in logs:
        try:
            lines = log.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            if not any(marker in line for marker in markers):
                continue
            # The same message from another task or time is one piece of evidence.
            shape = " ".join(word for word in line.split()[3:] if not any(c.isdigit() for c in word))
            if shape in seen:
                continue
            seen.add(shape)
            found.append(f"{log.stem}: {line.strip()[:240]}")
            if len(found) >= limit:
                return found
    return found
