"""The faults, one scenario each, and what every scenario checks afterwards.

A scenario gets a fresh cluster (`bench.cluster.GreyCluster`: `grey serve` gateways and a
`grey worker` on the suite's own Redis and a fresh store), submits `chaos_run` tasks,
injects its fault, lifts it, and then the `Run` judges:

- lost: an accepted task (201, or 503 naming its task id) or any task in the store that is
  not terminal `bound_seconds` after the fault ended;
- finished twice: a task with more than one terminal event in `task_events`;
- runs: `start` lines in the ledger (reported, never a failure: work runs at least once);
- recovery: from the fault's end until a probe task submitted then (priority critical, so
  it does not wait behind the backlog) has completed; and until every task had ended.

Also a failure: any 500 (or other unexpected answer), a task that ended failed or timed
out (`chaos_run` itself never fails), a completed task the ledger never saw run, and the
scenario's own checks (the gateway's exit time, the stream's final event, ...).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cluster import GreyCluster, PostgresDatabase, RedisServer
from loadtest.chaos.observe import (
    TERMINAL,
    UNFINISHED,
    Answer,
    Client,
    Observer,
    StreamWatch,
    log_evidence,
    read_ledger,
)

TASK_MODULES = "handlers.task_functions,handlers.task_functions.chaos"
HEARTBEAT = (1.0, 5.0)  # interval, timeout (s): a dead node is noticed within ~6 s
DEFAULT_GRACE = 20.0  # GREY_SHUTDOWN_GRACE_SECONDS when unset


@dataclass(frozen=True)
class Size:
    name: str
    tasks: int  # submitted before each fault
    task_seconds: float  # each sleeps this long
    during: int  # submitted while the fault lasts
    burst: int  # submitted at once while the broker is down
    outage_seconds: float  # PostgreSQL refusing connections, Redis down, disk full
    long_task_seconds: float  # the task running when a gateway gets SIGTERM
    grace_seconds: float | None  # GREY_SHUTDOWN_GRACE_SECONDS (None: the default, 20)
    bound_seconds: float  # every accepted task terminal this long after the fault ended
    # The scenarios run on SQLite too (None: every one that makes sense there). CI's small
    # size runs the store-specific one only: the others exercise the broker and processes.
    sqlite: tuple[str, ...] | None = None
    threads: int = 4


SIZES = {
    "small": Size("small", 8, 0.5, 4, 20, 5.0, 8.0, 6.0, 20.0, sqlite=("sqlite-disk-full",)),
    "full": Size("full", 48, 1.0, 16, 20, 10.0, 30.0, None, 90.0),
}


class NotRun(Exception):
    """The scenario cannot run here (the reason is the message)."""


@dataclass
class Outcome:
    scenario: str
    fault: str
    store: str
    result: str = "error"  # pass | fail | not run | error
    tasks: int = 0
    completed: int = 0
    lost: int = 0
    finished_twice: int = 0
    ended_badly: int = 0
    runs: int = 0
    extra_runs: int = 0
    recovery_seconds: float | None = None
    drained_seconds: float | None = None
    answers: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    logs: str = ""


@dataclass
class Suite:
    """What every scenario shares: the size, the suite's Redis, PostgreSQL's admin URL."""

    size: Size
    redis: RedisServer
    postgres_admin_url: str
    scratch: Path  # stores (SQLite files, tmpfs mounts)
    logs: Path  # per scenario: process logs, ledger, cluster config


Phase = Callable[[str], None]


class Run:
    """One scenario on one store: its cluster, its client, its timeline and its verdict."""

    def __init__(self, suite: Suite, scenario: Scenario, store: str, phase: Phase) -> None:
        self.suite, self.size, self.scenario, self.store = suite, suite.size, scenario, store
        self.phase_callback = phase
        self.name = f"{store}-{scenario.key}"
        self.logs = suite.logs / self.name
        self.scratch = suite.scratch / self.name
        self.logs.mkdir(parents=True, exist_ok=True)
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.ledger = self.logs / "ledger"
        self.started = time.monotonic()
        self.outcome = Outcome(scenario.key, scenario.fault, store, logs=str(self.logs))
        self.checks: list[tuple[bool, str]] = []
        self.burst_rule = False  # broker-down burst: 503 answers must name a task id
        self.fault_ended: float | None = None
        self.postgres: PostgresDatabase | None = None
        self.cluster: GreyCluster | None = None
        self.client: Client | None = None
        self.observer: Observer | None = None
        self.cleanups: list[Callable[[], None]] = []

    # -- the timeline ---------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.started

    def mark(self, what: str) -> None:
        self.outcome.timeline.append((round(self.now(), 2), what))
        self.phase_callback(what)

    def fault_end(self, what: str) -> None:
        self.fault_ended = time.monotonic()
        self.mark(what)

    # -- the cluster ----------------------------------------------------------------------

    def database_url(self) -> str:
        if self.store == "sqlite":
            return f"sqlite:///{self.scratch / 'grey.db'}"
        self.postgres = PostgresDatabase(self.suite.postgres_admin_url)
        self.cleanups.append(self.postgres.drop)
        return self.postgres.url

    def start(self, database_url: str | None = None, gateways: int = 1) -> GreyCluster:
        redis = self.suite.redis
        if not redis.alive:
            redis.start()  # a previous scenario may have left it down
        redis.flush()
        url = database_url or self.database_url()
        config = self.logs / "cluster.yaml"
        interval, timeout = HEARTBEAT
        config.write_text(
            "version: 1\nname: chaos\npools:\n  cpu: {nodes: 1, threads_per_node: "
            f"{self.size.threads}}}\nheartbeat: {{interval_seconds: {interval}, timeout_seconds: "
            f"{timeout}}}\nrate_limits: {{submit: null, tasks_read: null, cluster: null, other: null}}\n"
        )
        env = {
            "GREY_TASK_MODULES": TASK_MODULES,
            "GREY_CHAOS_LEDGER": str(self.ledger),
            "GREY_CLUSTER_CONFIG": str(config),
        }
        if self.size.grace_seconds is not None:
            env["GREY_SHUTDOWN_GRACE_SECONDS"] = str(self.size.grace_seconds)
        self.mark(f"starting {gateways} gateway(s) and a worker")
        self.cluster = GreyCluster(
            url, redis.url(), self.logs, gateways=gateways, threads=self.size.threads, env=env
        )
        self.cluster.start()
        self.observer = Observer(url)
        self.client = Client([self.cluster.url(i) for i in range(gateways)], self.cluster.key, self.started)
        self.mark("cluster up")
        return self.cluster

    @property
    def grace(self) -> float:
        return self.size.grace_seconds if self.size.grace_seconds is not None else DEFAULT_GRACE

    # -- submitting -----------------------------------------------------------------------

    def submit_many(self, count: int, seconds: float, phase: str, gateways: list[int] | None = None) -> None:
        """`count` submits, 8 at a time, round robin over `gateways` (all by default)."""
        assert self.client is not None and self.cluster is not None
        client = self.client
        chosen = gateways or list(range(len(self.cluster.gateways)))
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: client.submit(chosen[i % len(chosen)], seconds, phase), range(count)))

    def submit_spread(self, count: int, over: float, phase: str, gateways: list[int] | None = None) -> None:
        """`count` submits one after another, spread over `over` seconds."""
        assert self.client is not None and self.cluster is not None
        chosen = gateways or list(range(len(self.cluster.gateways)))
        start = time.monotonic()
        for i in range(count):
            self.client.submit(chosen[i % len(chosen)], self.size.task_seconds, phase)
            time.sleep(max(0.0, start + (i + 1) * over / count - time.monotonic()))

    def burst(self, count: int, phase: str) -> list[Answer]:
        """`count` submits released at the same moment (one thread each)."""
        assert self.client is not None and self.cluster is not None
        client, gateways = self.client, len(self.cluster.gateways)
        barrier = threading.Barrier(count)

        def one(i: int) -> Answer:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=10)
            return client.submit(i % gateways, self.size.task_seconds, phase)

        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(one, range(count)))

    def wait_running(self, at_least: int, timeout: float = 20) -> int:
        """Until `at_least` tasks are running (or `timeout`); how many were."""
        assert self.observer is not None
        deadline = time.monotonic() + timeout
        running = 0
        while time.monotonic() < deadline:
            statuses = self.observer.statuses() or {}
            running = sum(1 for s in statuses.values() if s == "running")
            if running >= at_least:
                break
            time.sleep(0.1)
        self.mark(f"{running} tasks running")
        return running

    # -- after the fault ------------------------------------------------------------------

    def recover(self, gateways: list[int] | None = None) -> None:
        """Probe tasks (critical: ahead of any backlog), one every 0.5 s, until one completes:
        the recovery time."""
        assert self.client is not None and self.observer is not None and self.cluster is not None
        assert self.fault_ended is not None, "the scenario never ended its fault"
        self.mark("probing")
        chosen = gateways or list(range(len(self.cluster.gateways)))
        deadline = self.fault_ended + self.size.bound_seconds
        probes: list[str] = []
        turn = 0
        while time.monotonic() < deadline:
            answer = self.client.submit(chosen[turn % len(chosen)], 0.0, "probe", priority="critical")
            turn += 1
            if answer.accepted and answer.task_id:
                probes.append(answer.task_id)
            until = min(deadline, time.monotonic() + 0.5)
            while time.monotonic() < until:
                statuses = self.observer.statuses() or {}
                if any(statuses.get(p) == "completed" for p in probes):
                    self.outcome.recovery_seconds = round(time.monotonic() - self.fault_ended, 2)
                    self.mark(f"a probe completed {self.outcome.recovery_seconds} s after the fault")
                    return
                time.sleep(0.1)
        self.mark("no probe completed within the bound")

    def settle(self) -> None:
        """Until every task is terminal, at most `bound_seconds` after the fault ended."""
        assert self.observer is not None and self.client is not None
        assert self.fault_ended is not None
        self.mark(f"waiting for every task to end (bound {self.size.bound_seconds:.0f} s)")
        deadline = self.fault_ended + self.size.bound_seconds
        while True:
            statuses = self.observer.statuses()
            if statuses is not None:
                missing = [t for t in self.client.accepted() if t not in statuses]
                if not missing and all(s in TERMINAL for s in statuses.values()):
                    self.outcome.drained_seconds = round(time.monotonic() - self.fault_ended, 2)
                    self.mark(f"every task ended {self.outcome.drained_seconds} s after the fault")
                    return
            if time.monotonic() >= deadline:
                self.mark("bound reached")
                return
            time.sleep(0.25)

    def check(self, ok: bool, what: str) -> None:
        self.checks.append((ok, what))

    # -- the verdict ----------------------------------------------------------------------

    def judge(self) -> Outcome:
        assert self.observer is not None and self.client is not None and self.cluster is not None
        out = self.outcome
        rows = self.observer.rows()
        ends = self.observer.terminal_events()
        ledger = read_ledger(self.ledger)
        accepted = set(self.client.accepted())
        every = accepted | set(rows)
        out.tasks = len(every)
        missing = sorted(accepted - set(rows))
        stuck = sorted(t for t, row in rows.items() if row.status in UNFINISHED)
        out.lost = len(missing) + len(stuck)
        out.completed = sum(1 for row in rows.values() if row.status == "completed")
        twice = sorted(t for t, counts in ends.items() if sum(counts.values()) > 1)
        out.finished_twice = len(twice)
        badly = sorted(t for t, row in rows.items() if row.status in TERMINAL and row.status != "completed")
        out.ended_badly = len(badly)
        out.runs = sum(counts["start"] for counts in ledger.values())
        out.extra_runs = sum(max(0, counts["start"] - 1) for counts in ledger.values())
        never_ran = sorted(
            t for t, row in rows.items() if row.status == "completed" and not ledger[t]["start"]
        )
        answers = self.client.answers
        out.answers = dict(Counter(str(a.status or "no answer") for a in answers))
        unexpected = [a for a in answers if a.status not in (None, 201, 503)]
        unnamed = [a for a in answers if self.burst_rule and a.phase == "burst" and not a.accepted]

        reasons = out.reasons
        if missing:
            reasons.append(f"{len(missing)} accepted tasks are not in the store")
        if stuck:
            states = Counter(rows[t].status for t in stuck)
            detail = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
            reasons.append(
                f"{len(stuck)} tasks not terminal {self.size.bound_seconds:.0f} s after the fault ({detail})"
            )
        if twice:
            reasons.append(f"{len(twice)} tasks finished twice")
        if badly:
            errors = Counter(_error_text(rows[t].error) for t in badly)
            reasons.append(
                f"{len(badly)} tasks ended {'/'.join(sorted({rows[t].status for t in badly}))}: "
                + "; ".join(f"{n}x {e}" for e, n in errors.most_common(2))
            )
        if never_ran:
            reasons.append(f"{len(never_ran)} tasks completed without a run in the ledger")
        if unexpected:
            shown = Counter(f"{a.status} {a.code}".strip() for a in unexpected)
            reasons.append("unexpected answers: " + ", ".join(f"{n}x {s}" for s, n in shown.items()))
        if unnamed:
            shown = Counter(f"{a.status or a.error.split(':')[0]} {a.code}".strip() for a in unnamed)
            reasons.append(
                "burst answers neither 201 nor 503 with a task id: "
                + ", ".join(f"{n}x {s}" for s, n in shown.items())
            )
        if out.recovery_seconds is None:
            reasons.append(f"no probe task completed within {self.size.bound_seconds:.0f} s of the fault")
        reasons += [what for ok, what in self.checks if not ok]
        out.notes += [what for ok, what in self.checks if ok]

        for task_id in (stuck + missing + twice + badly)[:5]:
            row = rows.get(task_id)
            if row is None:
                out.evidence.append(f"{task_id}: not in the store")
                continue
            history = " | ".join(self.observer.history(task_id))
            out.evidence.append(
                f"{task_id}: {row.status}, attempt {row.attempt}, retries {row.retry_count}, "
                f"on {row.executed_on}, runs {ledger[task_id]['start']}; last events: {history}"
            )
        logs = [child.log for child in [*self.cluster.gateways, *self.cluster.workers]]
        out.evidence += log_evidence(logs)
        out.result = "fail" if reasons else "pass"
        return out

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            took = self.cluster.stop(timeout=15)
            killed = [name for name, seconds in took.items() if seconds is None]
            slow = {name: round(s, 1) for name, s in took.items() if s is not None and s > 5}
            if killed:
                self.outcome.notes.append(
                    f"at the end, {', '.join(killed)} had to be killed (SIGTERM + 15 s)"
                )
            if slow:
                self.outcome.notes.append(f"stop took {slow} s")
        if self.observer is not None:
            self.observer.dispose()
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as error:  # cleaning up must not hide the verdict
                self.outcome.notes.append(f"clean-up failed: {type(error).__name__}: {error}")


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message", error))[:120]
    return str(error)[:120]


# -- the scenarios --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    key: str
    fault: str
    stores: tuple[str, ...]
    body: Callable[[Run], None]


def postgres_refuses(run: Run) -> None:
    """PostgreSQL refuses connections for `outage_seconds` (ALLOW_CONNECTIONS false, every
    backend terminated), then allows them again; submits keep coming meanwhile."""
    run.start()
    assert run.postgres is not None
    size = run.size
    run.submit_many(size.tasks, size.task_seconds, "before")
    run.wait_running(min(size.threads, size.tasks))
    run.mark(f"PostgreSQL refuses connections for {size.outage_seconds:.0f} s")
    ended = time.monotonic() + size.outage_seconds
    killed = run.postgres.refuse_connections()
    run.mark(f"{killed} backends terminated")
    run.submit_spread(size.during, size.outage_seconds * 0.8, "during")
    time.sleep(max(0.0, ended - time.monotonic()))
    run.postgres.allow_connections()
    run.fault_end("PostgreSQL accepts connections again")
    run.recover()
    run.settle()


def backlog(size: Size) -> int:
    """Enough tasks that some wait in Redis, beyond what the worker prefetched (2 per thread)."""
    return max(size.tasks, 6 * size.threads)


def redis_restarted_empty(run: Run) -> None:
    """The broker's Redis stops cleanly and starts again empty (queued messages gone) while
    the gateway and the worker keep running."""
    run.start()
    size = run.size
    run.submit_many(backlog(size), size.task_seconds, "before")
    run.wait_running(min(size.threads, size.tasks))
    run.mark("Redis restarting (empty)")
    run.suite.redis.stop()
    run.suite.redis.start()
    run.fault_end("Redis is back, empty")
    run.submit_many(size.during, size.task_seconds, "after")
    run.recover()
    run.settle()


def broker_down_submits(run: Run) -> None:
    """`burst` submits at once while Redis is down: each answer 201 or 503 naming the
    stored task, never 500; then Redis comes back (empty)."""
    run.start()
    size = run.size
    run.burst_rule = True
    run.submit_many(size.threads, size.task_seconds, "before")
    run.wait_running(1)
    run.mark("Redis stopped")
    run.suite.redis.stop()
    answers = run.burst(size.burst, "burst")
    shown = Counter(
        str(a.status or "no answer") + (" with id" if a.status == 503 and a.task_id else "") for a in answers
    )
    run.mark("burst answered: " + ", ".join(f"{n}x {s}" for s, n in sorted(shown.items())))
    time.sleep(1.0)
    run.suite.redis.start()
    run.fault_end("Redis is back, empty")
    run.recover()
    run.settle()


def gateway_sigterm(run: Run) -> None:
    """SIGTERM to a gateway while a long task runs and its SSE stream is open there: it must
    exit within GREY_SHUTDOWN_GRACE_SECONDS and the stream must end with `event: done`."""
    cluster = run.start(gateways=2)
    assert run.client is not None
    size = run.size
    long = run.client.submit(0, size.long_task_seconds, "long")
    if not long.task_id:
        run.check(False, f"the long task was not accepted: {long.status} {long.error}")
        run.fault_end("no long task")
        run.recover([1])
        run.settle()
        return
    run.submit_many(size.tasks, size.task_seconds, "before")
    run.wait_running(1)
    watch = StreamWatch(
        f"{cluster.url(0)}/v1/tasks/{long.task_id}/stream", cluster.key, run.grace + 30
    ).start()
    run.check(watch.opened.wait(10) and not watch.ended, "the stream opened on gateway 1")
    run.mark(f"SIGTERM to gateway 1 (grace {run.grace:.0f} s)")
    took = cluster.gateways[0].terminate(timeout=run.grace + 10)
    run.fault_end("gateway 1 exited" if took is not None else "gateway 1 killed after grace + 10 s")
    if took is None:
        run.check(False, f"gateway 1 had not exited {run.grace + 10:.0f} s after SIGTERM (killed)")
    else:
        run.check(took <= run.grace, f"gateway 1 exited {took:.1f} s after SIGTERM (grace {run.grace:.0f} s)")
    watch.join(5)
    run.check(
        watch.done,
        f"the stream ended with event: done (last events: {', '.join(watch.events[-3:]) or 'none'}; "
        f"{watch.ended or 'still open'})",
    )
    run.recover([1])
    run.settle()


def sqlite_disk_full(run: Run) -> None:
    """The SQLite file's disk fills up (a small tmpfs filled by a file), stays full for
    `outage_seconds` while tasks run and submits come, then the file is removed."""
    mount = run.scratch / "disk"
    mount.mkdir(exist_ok=True)
    if os.geteuid() != 0:
        raise NotRun("mounting a tmpfs needs root; this suite is not running as root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise NotRun(f"mount -t tmpfs not permitted here: {(done.stderr or done.stdout).strip()[:160]}")
    run.cleanups.append(lambda: _unmount(mount))
    run.mark("tmpfs of 64 MiB mounted for the store")
    run.start(database_url=f"sqlite:///{mount / 'grey.db'}")
    size = run.size
    run.submit_many(size.tasks, size.task_seconds, "before")
    run.wait_running(min(size.threads, size.tasks))
    filler = mount / "filler"
    left = _fill(filler)
    run.mark(f"disk full ({left} bytes could not be written) for {size.outage_seconds:.0f} s")
    ended = time.monotonic() + size.outage_seconds
    run.submit_spread(size.during, size.outage_seconds * 0.8, "during")
    full = [a for a in (run.client.answers if run.client else []) if a.phase == "during"]
    run.outcome.notes.append(
        "while full: " + ", ".join(f"{n}x {s}" for s, n in Counter(str(a.status) for a in full).items())
    )
    time.sleep(max(0.0, ended - time.monotonic()))
    filler.unlink()
    run.fault_end("disk has room again")
    run.recover()
    run.settle()


def _fill(path: Path) -> int:
    """Writes `path` until the disk is full; the size of the write that failed last."""
    chunk = 1 << 20
    with path.open("wb", buffering=0) as out:
        while chunk:
            try:
                out.write(b"\0" * chunk)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                if chunk == 1:
                    return 1
                chunk //= 2
    return 0


def _unmount(mount: Path) -> None:
    if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
    shutil.rmtree(mount, ignore_errors=True)


def worker_kill9(run: Run) -> None:
    """kill -9 of the worker's node process while it runs tasks; its supervisor starts a
    new one, and the dead node's tasks must come back through the reaper."""
    cluster = run.start()
    size = run.size
    run.submit_many(size.tasks, size.task_seconds * 2, "before")
    run.wait_running(min(size.threads, size.tasks))
    pids = cluster.node_pids(0)
    run.mark(f"kill -9 of worker node process {pids}")
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    run.fault_end("worker node process killed")
    run.submit_many(size.during, size.task_seconds, "after")
    run.recover()
    run.settle()


def gateway_kill9(run: Run) -> None:
    """kill -9 of a gateway while submits stream in through both gateways; it is restarted."""
    cluster = run.start(gateways=2)
    assert run.client is not None
    size = run.size
    run.submit_many(size.tasks, size.task_seconds, "before")
    stop = threading.Event()

    def steady() -> None:  # one submit every 50 ms, both gateways, until stopped (bounded)
        assert run.client is not None
        for i in range(2000):
            if stop.wait(0.05):
                return
            run.client.submit(i % 2, size.task_seconds, "during")

    feeder = threading.Thread(target=steady, name="chaos-feeder", daemon=True)
    feeder.start()
    time.sleep(1.0)
    run.mark("kill -9 of gateway 1")
    cluster.gateways[0].kill()
    time.sleep(1.0)
    took = cluster.start_gateway(0)
    run.fault_end(f"gateway 1 restarted ({took:.1f} s to answer)")
    time.sleep(1.0)
    stop.set()
    feeder.join(30)
    run.recover()
    run.settle()


def redis_kill9(run: Run) -> None:
    """kill -9 of Redis (everything in it is lost), submits while it is down, a restart."""
    run.start()
    size = run.size
    run.submit_many(backlog(size), size.task_seconds, "before")
    run.wait_running(min(size.threads, size.tasks))
    run.mark("kill -9 of Redis")
    run.suite.redis.kill()
    run.submit_spread(size.during, 2.0, "during")
    run.suite.redis.start()
    run.fault_end("Redis restarted")
    run.recover()
    run.settle()


SCENARIOS = [
    Scenario("postgres-refuses", "PostgreSQL refuses connections", ("postgresql",), postgres_refuses),
    Scenario("redis-restart-empty", "Redis restarted empty", ("postgresql", "sqlite"), redis_restarted_empty),
    Scenario(
        "broker-down-burst", "submits while the broker is down", ("postgresql", "sqlite"), broker_down_submits
    ),
    Scenario(
        "gateway-sigterm", "SIGTERM of a gateway (stream open)", ("postgresql", "sqlite"), gateway_sigterm
    ),
    Scenario("sqlite-disk-full", "SQLite disk full", ("sqlite",), sqlite_disk_full),
    Scenario("worker-kill9", "kill -9 of a worker", ("postgresql", "sqlite"), worker_kill9),
    Scenario("gateway-kill9", "kill -9 of a gateway (restarted)", ("postgresql", "sqlite"), gateway_kill9),
    Scenario("redis-kill9", "kill -9 of Redis (restarted)", ("postgresql", "sqlite"), redis_kill9),
]


def run_scenario(suite: Suite, scenario: Scenario, store: str, phase: Phase) -> Outcome:
    """Runs one scenario on one store; never raises (an unexpected error is its outcome)."""
    run = Run(suite, scenario, store, phase)
    try:
        scenario.body(run)
        run.judge()
    except NotRun as reason:
        run.outcome.result = "not run"
        run.outcome.reasons.append(str(reason))
    except Exception as error:
        run.outcome.result = "error"
        run.outcome.reasons.append(f"the suite failed: {type(error).__name__}: {error}"[:400])
        if run.cluster is not None:
            logs = [c.log for c in [*run.cluster.gateways, *run.cluster.workers]]
            run.outcome.evidence += log_evidence(logs)
    finally:
        run.close()
    return run.outcome
