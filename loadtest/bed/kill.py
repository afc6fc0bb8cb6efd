"""A worker killed mid-level (`grey loadtest --kill-worker-at SECONDS`).

SIGKILL of one `grey worker`'s node process (the process whose threads run the tasks) at a
chosen second of the level: no clean stop, no hand-back, its heartbeats just end. Its
supervisor starts a new node process, as it would in production; the dead node's running
tasks come back when a peer's reaper sees its heartbeat stale (runtime/execution/nodes.py).
Recorded: what was running on it, when it died, how long until the new node process was
registered (the repair time the twin is told), every live node's last heartbeat at the kill
and the period between beats before it (which decide when a peer notices the death; the twin
is told them too, simulator/heartbeats.py), when the death was noticed, and then the recovery
figures (simulator/recovery.py) from the store's records.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import threading
import time
from datetime import UTC, datetime
from typing import Any

from bench.cluster import GreyCluster
from loadtest.bed.records import TaskRecord
from simulator.recovery import completion_series, recovery_figures

RESTART_WAIT_SECONDS = 120.0
BUSY_WAIT_SECONDS = 5.0  # past the chosen second, for the worker to start a task
BEAT_POLL_SECONDS = 0.2  # how often the nodes' heartbeats are read before the kill
SERIES_WINDOW = (-10.0, 30.0)  # seconds around the kill the plot shows


def first_submit_since(engine: Any, since: datetime) -> datetime | None:
    """When the first task created at or after `since` was (None: none yet)."""
    from sqlalchemy import func, select

    from runtime.store.schema import tasks

    with engine.connect() as conn:
        return conn.execute(select(func.min(tasks.c.created_at)).where(tasks.c.created_at >= since)).scalar()


def heartbeats(engine: Any) -> list[tuple[str, str, datetime | None]]:
    """(id, role, last heartbeat) of every node the store does not list as down."""
    from sqlalchemy import select

    from runtime.store.schema import nodes

    stmt = select(nodes.c.node_id, nodes.c.role, nodes.c.last_heartbeat).where(nodes.c.status != "down")
    with engine.connect() as conn:
        return [(node_id, role, beat) for node_id, role, beat in conn.execute(stmt)]


def requeued_at(engine: Any, task_ids: list[str]) -> datetime | None:
    """When the first of `task_ids` was handed back after its node stopped heartbeating (the
    reaper's event, runtime/execution/nodes.py) or its lease expired (the reconciler's)."""
    from sqlalchemy import func, or_, select

    from runtime.store.schema import task_events

    if not task_ids:
        return None
    stmt = select(func.min(task_events.c.at)).where(
        task_events.c.task_id.in_(task_ids),
        or_(
            task_events.c.message.like("%stopped heartbeating%"),
            task_events.c.message.like("lease of attempt % expired%"),
        ),
    )
    with engine.connect() as conn:
        return conn.execute(stmt).scalar()


def running_on(engine: Any, node_ids: list[str]) -> list[tuple[str, datetime]]:
    """(id, start) of the tasks the store says are running on `node_ids`."""
    from sqlalchemy import select

    from runtime.store.schema import tasks

    if not node_ids:
        return []
    stmt = select(tasks.c.task_id, tasks.c.started_at).where(
        tasks.c.status == "running", tasks.c.executed_on.in_(node_ids)
    )
    with engine.connect() as conn:
        return [(task_id, started) for task_id, started in conn.execute(stmt)]


class WorkerKill:
    """Kills worker `index`'s node process as it starts a task, the first it starts `after`
    seconds or more after the level's first submit (Locust takes seconds to start on a busy
    machine; at most `BUSY_WAIT_SECONDS` later), in a thread started with the level."""

    def __init__(self, grey: GreyCluster, index: int, after: float) -> None:
        if not 0 <= index < len(grey.workers):
            raise ValueError(f"--kill-worker: no worker {index + 1} (the cluster has {len(grey.workers)})")
        self.grey, self.index, self.after = grey, index, after
        self.at: float | None = None  # epoch seconds of the SIGKILL
        self.pids: list[int] = []
        self.node_ids: list[str] = []
        self.in_flight: list[str] = []
        self.restart_seconds: float | None = None
        # Each live node's last heartbeat, seconds before the kill: the killed node's says when
        # its silence began, the peers' give the phase of their reapers' ticks.
        self.beats: list[dict[str, Any]] = []
        # Seconds between a node's beats: the interval plus the beat's own duration (the agent
        # waits an interval after each beat ends), from the beats seen before the kill.
        self.beat_period: float | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-kill", daemon=True)

    def start(self) -> WorkerKill:
        self._thread.start()
        return self

    def join(self) -> None:
        """Waits for the restart to be seen (or gives up on it after RESTART_WAIT_SECONDS)."""
        self._thread.join()

    def cancel(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        grey = self.grey
        since = datetime.now(UTC)
        while (first := first_submit_since(grey.engine(), since)) is None:
            if self._stop.wait(0.1):
                return
        # Until the chosen second, every node's beats are watched: the time between two of a
        # node's beats is its period.
        seen: dict[str, float] = {}
        periods: list[float] = []
        while (left := first.timestamp() + self.after - time.time()) > 0:
            for node_id, (_, beat) in self._beats().items():
                if node_id in seen and beat > seen[node_id]:
                    periods.append(beat - seen[node_id])
                seen[node_id] = beat
            if self._stop.wait(min(left, BEAT_POLL_SECONDS)):
                return
        # (A poll sees every beat: periods are seconds long, polls a fifth of one.)
        self.beat_period = statistics.median(periods) if periods else None
        self.pids = grey.node_pids(self.index)
        nodes = grey.worker_nodes()
        self.node_ids = [nodes[pid] for pid in self.pids if pid in nodes]
        if not self.pids:
            self.error = f"worker {self.index + 1} has no node process to kill"
            return
        # The kill comes as the worker starts a task (the twin's `Outage` follows the same
        # rule): a kill of an idle worker tests nothing, and one as a task ends races it.
        looking = datetime.now(UTC)
        busy_by = time.monotonic() + BUSY_WAIT_SECONDS
        while time.monotonic() < busy_by:
            running = running_on(grey.engine(), self.node_ids)
            if any(started >= looking for _, started in running):
                break
            time.sleep(0.02)
        self.in_flight = [task_id for task_id, _ in running]
        self.at = time.time()
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.beats = [
            {"node_id": node_id, "role": role, "ago": self.at - beat, "killed": node_id in self.node_ids}
            for node_id, (role, beat) in self._beats().items()
        ]
        deadline = time.monotonic() + RESTART_WAIT_SECONDS
        while not self._stop.is_set() and time.monotonic() < deadline:
            registered = grey.worker_nodes()
            if any(pid not in self.pids and pid in registered for pid in grey.node_pids(self.index)):
                self.restart_seconds = time.time() - self.at
                return
            time.sleep(0.1)
        self.error = f"worker {self.index + 1}'s supervisor had no new node registered in time"

    def _beats(self) -> dict[str, tuple[str, float]]:
        """node id -> (role, epoch seconds of its last heartbeat) of the nodes not down; empty
        if the store could not say (a figure to compare, not a reason to stop the run)."""
        try:
            found = heartbeats(self.grey.engine())
        except Exception:
            return {}
        return {node_id: (role, beat.timestamp()) for node_id, role, beat in found if beat is not None}

    def measured(self, records: list[TaskRecord], heartbeat_timeout: float) -> dict[str, Any]:
        """The kill and the recovery figures from the level's records (after its drain)."""
        event: dict[str, Any] = {
            "worker": self.grey.workers[self.index].name,
            "after_seconds": self.after,
            "on_start_within": BUSY_WAIT_SECONDS,
            "pids": self.pids,
            "node_ids": self.node_ids,
            "in_flight": self.in_flight,
            "restart_seconds": self.restart_seconds,
            "heartbeat_timeout": heartbeat_timeout,
            "error": self.error,
            "heartbeats": self.beats,
            "beat_period": self.beat_period,
        }
        if self.at is None or not records:
            return event
        assert self.at is not None
        at = self.at
        ids = set(self.in_flight)
        # A task that completed between the look at the store and the SIGKILL was not lost.
        lost = [
            r.completed for r in records if r.task_id in ids and (r.completed is None or r.completed >= at)
        ]
        finishes = [r.completed for r in records]
        detected = None
        with contextlib.suppress(Exception):
            detected = requeued_at(self.grey.engine(), self.in_flight)
        event |= {
            "at_epoch": at,
            # the dead node noticed: its first in-flight task handed back (None: none was)
            "detected_seconds": detected.timestamp() - at if detected is not None else None,
            "at_seconds": at - records[0].created,  # from the level's first submit: the twin's clock
            "figures": recovery_figures([r.created for r in records], finishes, lost, at, heartbeat_timeout),
            "tasks_lost": sum(1 for r in records if r.status != "completed"),
            "series": completion_series(finishes, at, *SERIES_WINDOW),
        }
        return event
