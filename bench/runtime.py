"""`make bench-runtime`: the runtime's end-to-end throughput against bare Dramatiq.

On one Redis broker, in one run:

1. Grey: no-op tasks submitted through the REST API (wrk, 16 connections, as fast as the
   gateway takes them) to a `grey serve`-like gateway process, run by one worker process
   (`--threads 8`), counted when the store records them completed:
   tasks / (last completed_at - first created_at).
2. Bare Dramatiq: the same number of no-op messages sent with `actor.send` and run by
   one bare Dramatiq worker process with the same threads: messages / (last processed -
   first sent).
3. Latency: submit -> start (started_at - created_at) at 20 tasks/s, p50 and p99.
4. Priority: a critical task behind 1,000 normal ones (and high behind 1,000 low), with
   every worker thread busy: how many of the backlog started before it.

Steps 1 and 2 are repeated `--runs` times (default 5; a fresh store and gateway each run,
Grey and bare Dramatiq back to back); the table prints min / median / max of both rates and
of the ratio, and the target (≥ 0.5× with SQLite, ≥ 0.35× with PostgreSQL) counts as met only
when the worst run meets it (exit status 1 otherwise). Steps 3 and 4 run once, after the
last run. Writes out/bench/runtime.png (ratio per run, submit -> start distribution).

With `--database-url postgresql://...`, each run gets a database of its own on that server
(created and dropped by the bench), so no run counts another's tasks.

Usage: python -m bench.runtime [--runs 5] [--seconds 8] [--threads 8] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.cluster import REDIS_URL, BareDramatiq, Grey, PostgresDatabase
from bench.repeat import Spread

NOOP = {"type": "stateless", "payload": {"function": "noop"}}
#: Seconds a gateway and a worker get to start (each loads the task modules first, which
#: takes seconds on a busy box).
START_TIMEOUT = 120.0


# -- measurements ---------------------------------------------------------------------------


def run_bare(count: int, threads: int) -> float:
    """Messages per second of a bare Dramatiq worker, from the first send to the last run."""
    bare = BareDramatiq(count, threads)
    started = bare.send()
    ended = bare.finished()
    bare.wait()
    return count / (ended - started)


def wrk_submit(grey: Grey, seconds: float, connections: int = 16) -> None:
    script = (
        'wrk.method = "POST"\n'
        f"wrk.body = '{json.dumps(NOOP)}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {grey.key}"\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "-s",
            handle.name,
            f"{grey.url}/v1/tasks",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        raise SystemExit(f"wrk saw errors:\n{output}")


async def _submit_many(grey: Grey, bodies: list[dict[str, Any]], concurrency: int = 16) -> list[str]:
    import httpx

    headers = {"Authorization": f"Bearer {grey.key}"}
    ids: list[str] = [""] * len(bodies)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(bodies)):
        queue.put_nowait(index)

    async with httpx.AsyncClient(base_url=grey.url, headers=headers, timeout=30) as client:

        async def pump() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                response = await client.post("/v1/tasks", json=bodies[index])
                response.raise_for_status()
                ids[index] = response.json()["task_id"]

        await asyncio.gather(*(pump() for _ in range(concurrency)))
    return ids


def latency(grey: Grey, count: int = 200, rate: float = 20.0) -> list[float]:
    """Submit -> start (ms) of each task at a light, steady load, sorted."""
    import httpx

    ids = []
    with httpx.Client(base_url=grey.url, headers={"Authorization": f"Bearer {grey.key}"}) as client:
        for _ in range(count):
            ids.append(client.post("/v1/tasks", json=NOOP).json()["task_id"])
            time.sleep(1 / rate)
    grey.wait_idle()
    return sorted(
        (task.started_at - task.created_at).total_seconds() * 1000
        for task in (grey.store.tasks.get(None, i) for i in ids)
        if task is not None and task.started_at is not None
    )


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def priority(grey: Grey, threads: int, urgent: str, behind: str, backlog: int = 1000) -> int:
    """How many of `backlog` waiting tasks of priority `behind` started before one `urgent` task.

    Every worker thread is held by a long task of priority `behind`; the backlog and then the
    urgent task queue up behind them; cancelling the holders (DELETE stops running tasks)
    frees all threads at once.
    """
    import httpx

    holder = {
        "type": "stateless",
        "payload": {"function": "sleep", "data": {"seconds": 600}},
        "priority": behind,
    }
    holders = asyncio.run(_submit_many(grey, [holder] * threads))
    time.sleep(0.5)
    waiting = asyncio.run(_submit_many(grey, [{**NOOP, "priority": behind}] * backlog))
    [urgent_id] = asyncio.run(_submit_many(grey, [{**NOOP, "priority": urgent}]))
    time.sleep(0.5)
    with httpx.Client(base_url=grey.url, headers={"Authorization": f"Bearer {grey.key}"}) as client:
        for task_id in holders:
            client.delete(f"/v1/tasks/{task_id}")
    grey.wait_idle()
    first = grey.store.tasks.get(None, urgent_id)
    assert first is not None and first.started_at is not None
    started = (grey.store.tasks.get(None, i) for i in waiting)
    return sum(
        1 for t in started if t is not None and t.started_at is not None and t.started_at < first.started_at
    )


def fresh_database(server_url: str | None) -> PostgresDatabase | None:
    """A PostgreSQL run gets a database of its own on the server of `server_url`
    (`grey_bench_<random>`, dropped after the run), as a SQLite run gets a fresh file: the
    run's figures count only its own tasks. None: SQLite."""
    if server_url is None:
        return None
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    return PostgresDatabase(admin, prefix="grey_bench_")


#: Ratio targets by store (issue: throughput that holds on any box).
TARGETS = {"sqlite": 0.5, "postgresql": 0.35}


def target_for(database_url: str) -> float:
    return TARGETS["postgresql" if database_url.startswith("postgresql") else "sqlite"]


def plot(ratios: list[float], target: float, waits: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (runs, cdf) = plt.subplots(1, 2, figsize=(10, 4))
    runs.bar([str(i + 1) for i in range(len(ratios))], ratios, color="tab:blue")
    runs.axhline(target, color="tab:red", linestyle="--", label=f"target {target}× bare")
    runs.set_xlabel("run")
    runs.set_ylabel("Grey tasks/s ÷ bare Dramatiq msgs/s")
    runs.set_title("Throughput ratio per run, Redis broker")
    runs.legend()
    cdf.plot(waits, [(i + 1) / len(waits) for i in range(len(waits))])
    cdf.set_xlabel("submit -> start (ms) at 20 tasks/s")
    cdf.set_ylabel("fraction of tasks")
    cdf.set_title("Queue latency")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    parser = argparse.ArgumentParser(prog="bench.runtime")
    parser.add_argument("--runs", type=int, default=5, help="throughput runs (Grey and bare each)")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long wrk submits")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (both systems)")
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server (each run creates and drops a database of its own on it); "
        "default: a fresh SQLite file per run",
    )
    args = parser.parse_args(argv)
    args.runs = max(1, args.runs)  # the last run also measures latency and priority
    console = Console()
    workdir = Path(tempfile.mkdtemp(prefix="grey-bench-"))
    target = target_for(args.database_url or "sqlite")
    console.print(
        f"broker {REDIS_URL}, store {(args.database_url or 'sqlite (fresh file per run)').split('@')[-1]}, "
        f"{args.threads} worker threads, {os.cpu_count()} cores, {args.runs} runs"
    )
    grey_rates: list[float] = []
    bare_rates: list[float] = []
    counts: list[int] = []
    with Progress(console=console, transient=True) as progress:
        step = progress.add_task("starting", total=args.runs * 3 + 3)
        for run in range(1, args.runs + 1):
            last = run == args.runs
            progress.update(step, description=f"run {run}/{args.runs}: starting a gateway and a worker")
            rundir = workdir / f"run{run}"
            rundir.mkdir()
            database = fresh_database(args.database_url)
            database_url = database.url if database is not None else f"sqlite:///{rundir / 'grey.db'}"
            grey = Grey(database_url, args.threads, rundir, start_timeout=START_TIMEOUT)
            try:
                progress.update(
                    step, advance=1, description=f"run {run}/{args.runs}: Grey, wrk {args.seconds:.0f} s"
                )
                wrk_submit(grey, args.seconds)
                grey.wait_idle()
                count, seconds = grey.span()
                counts.append(count)
                grey_rates.append(count / seconds)
                progress.advance(step)
                if last:
                    progress.update(step, description="Grey: submit -> start at 20 tasks/s")
                    waits = latency(grey)
                    progress.update(step, advance=1, description="Grey: critical behind 1,000 normal")
                    critical = priority(grey, args.threads, "critical", "normal")
                    progress.update(step, advance=1, description="Grey: high behind 1,000 low")
                    high = priority(grey, args.threads, "high", "low")
                    progress.advance(step)
            finally:
                grey.stop()
                if database is not None:
                    database.drop()
            progress.update(step, description=f"run {run}/{args.runs}: bare Dramatiq, {count} messages")
            bare_rates.append(run_bare(count, args.threads))
            progress.advance(step)
    ratios = [g / b for g, b in zip(grey_rates, bare_rates, strict=True)]
    ratio = Spread.of(ratios)
    met = ratio.minimum >= target
    table = Table(
        title=f"Runtime vs bare Dramatiq: Redis, {args.threads} threads, {args.runs} runs (min/median/max)"
    )
    for column in ("measure", "value"):
        table.add_column(column)
    table.add_row("no-op tasks per run", Spread.of([float(c) for c in counts]).format("{:,.0f}"))
    table.add_row(
        "Grey: REST submit -> completed in store", Spread.of(grey_rates).format("{:,.1f}", " tasks/s")
    )
    table.add_row("bare Dramatiq: send -> processed", Spread.of(bare_rates).format("{:,.1f}", " msgs/s"))
    table.add_row("ratio per run", "  ".join(f"{r:.2f}×" for r in ratios))
    table.add_row(
        "ratio",
        ratio.format(suffix="×") + f" (target ≥ {target}× in every run: {'met' if met else 'NOT met'})",
    )
    p50, p99 = statistics.median(waits), percentile(waits, 0.99)
    table.add_row("submit -> start at 20 tasks/s", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    bound = f"(bound: {args.threads} threads)"
    table.add_row("normal started before critical (of 1,000)", f"{critical} {bound}")
    table.add_row("low started before high (of 1,000)", f"{high} {bound}")
    console.print(table)
    plot(ratios, target, waits, Path("out/bench/runtime.png"))
    console.print("plot: out/bench/runtime.png")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
