"""`make bench-peers`: Grey against FastAPI + Celery, same job, same machine, same load tool.

Per store (SQLite file, PostgreSQL database of its own) and per run (`--runs`, default 3),
each system is started fresh and gets, from the same load tool (bench.peers.load):

1. Throughput: wrk submits no-op tasks over HTTP for `--seconds` (16 connections, as fast
   as the system answers); completed tasks/s = tasks completed / (wrk's start -> the last
   completion in the system's record). Then the final state of up to 1,000 of them is
   read over HTTP: every one must show completed.
2. Latency: `--rate` submits/s for `--latency-seconds` (an open loop); submit -> completed
   per task = its completion time in the system's record - when its POST was sent (one
   clock: same machine); p50 and p99. Every one's final state is then read over HTTP.

Prints min / median / max over the runs of each figure and of Grey / peer; the target
(Grey ≥ 1.0× the peer's completed/s in every run, p50 and p99 no worse at the median)
decides the exit status. How the peer is built: bench/peers/celery_app.py, bench/peers/api.py.

Usage: python -m bench.peers [--runs 3] [--stores sqlite,postgresql] [--threads 8]
       [--seconds 8] [--rate 50] [--latency-seconds 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.cluster import REDIS_URL, PostgresDatabase
from bench.peers.load import final_states, percentile, saturate, steady
from bench.peers.systems import GreySystem, PeerSystem, System, wait_settled
from bench.repeat import Spread

SAMPLE = 1000


@dataclass
class Figures:
    """One system's figures over the runs."""

    rates: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)


def measure(system: System, seconds: float, rate: float, latency_seconds: float, figures: Figures) -> str:
    """Both measurements on one started system; a line saying what it did."""
    before, _ = system.completions()
    started = datetime.now(UTC)
    answered = saturate(system.target, seconds)
    count, last = wait_settled(system)
    completed = count - before
    if last is None or completed < answered:
        raise SystemExit(f"{system.name}: {completed} completed of {answered} submits answered")
    figures.rates.append(completed / (last - started).total_seconds())
    states = final_states(system.target, system.sample_ids(SAMPLE))
    if set(states) - system.target.done:
        raise SystemExit(f"{system.name}: final states over HTTP: {dict(states)}")
    sent = steady(system.target, rate, latency_seconds)
    wait_settled(system)
    finished = system.completed_at([task_id for task_id, _ in sent])
    waits = sorted((finished[task_id].timestamp() - at) * 1000 for task_id, at in sent if task_id in finished)
    if len(waits) < len(sent):
        raise SystemExit(
            f"{system.name}: {len(sent) - len(waits)} of the latency phase's tasks did not complete"
        )
    read_back = final_states(system.target, [task_id for task_id, _ in sent])
    if set(read_back) - system.target.done:
        raise SystemExit(f"{system.name}: final states over HTTP: {dict(read_back)}")
    figures.p50.append(statistics.median(waits))
    figures.p99.append(percentile(waits, 0.99))
    return (
        f"{system.name}: {completed:,} tasks at {figures.rates[-1]:,.0f}/s, {sum(states.values())} read "
        f"back completed over HTTP; {len(waits)} at {rate:g}/s (all read back completed): "
        f"p50 {figures.p50[-1]:.1f} ms, "
        f"p99 {figures.p99[-1]:.1f} ms"
    )


def run_store(store: str, args: argparse.Namespace, say: Callable[[str], None]) -> tuple[Figures, Figures]:
    grey, peer = Figures(), Figures()
    workdir = Path(tempfile.mkdtemp(prefix="grey-peers-"))
    for run in range(1, args.runs + 1):
        for name, figures in (("grey", grey), ("peer", peer)):
            rundir = workdir / f"{store}-{run}-{name}"
            rundir.mkdir()
            database = PostgresDatabase(prefix="grey_peers_") if store == "postgresql" else None
            url = database.url if database is not None else f"sqlite:///{rundir / 'store.db'}"
            try:
                system: System = (
                    GreySystem(url, args.threads, rundir)
                    if name == "grey"
                    else PeerSystem(url, args.threads, rundir)
                )
                try:
                    say(
                        f"  [{store} run {run}] "
                        + measure(system, args.seconds, args.rate, args.latency_seconds, figures)
                    )
                finally:
                    system.stop()
            finally:
                if database is not None:
                    database.drop()
        time.sleep(1)
    return grey, peer


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(prog="bench.peers")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--threads", type=int, default=8, help="worker threads / processes (both systems)")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long wrk submits")
    parser.add_argument("--rate", type=float, default=50.0, help="submits/s of the latency phase")
    parser.add_argument("--latency-seconds", type=float, default=6.0)
    args = parser.parse_args(argv)
    args.runs = max(1, args.runs)
    console = Console(width=150)
    console.print(
        f"Redis {REDIS_URL}; {args.threads} workers each; {os.cpu_count()} cores; {args.runs} runs; "
        "Grey: one gateway process + one worker process with threads; peer: uvicorn + FastAPI, "
        "Celery worker (prefork, --concurrency), SQLAlchemy result backend"
    )
    met_all = True
    for store in args.stores.split(","):
        grey, peer = run_store(store, args, console.print)
        ratio = Spread.of([g / p for g, p in zip(grey.rates, peer.rates, strict=True)])
        rate_met = ratio.minimum >= 1.0
        p50_met = statistics.median(grey.p50) <= statistics.median(peer.p50)
        p99_met = statistics.median(grey.p99) <= statistics.median(peer.p99)
        met_all = met_all and rate_met and p50_met and p99_met
        table = Table(title=f"Grey vs FastAPI + Celery, {store} ({args.runs} runs: min / median / max)")
        for column in ("figure", "Grey", "FastAPI + Celery", "Grey / peer", "target"):
            table.add_column(column)
        table.add_row(
            "completed tasks/s (HTTP submit, wrk 16 conns)",
            Spread.of(grey.rates).format("{:,.0f}"),
            Spread.of(peer.rates).format("{:,.0f}"),
            ratio.format(suffix="×"),
            f"≥ 1.0× every run: {'met' if rate_met else 'NOT met'}",
        )
        for label, g, p, met in (("p50", grey.p50, peer.p50, p50_met), ("p99", grey.p99, peer.p99, p99_met)):
            table.add_row(
                f"submit -> completed {label} at {args.rate:g}/s (ms)",
                Spread.of(g).format("{:.1f}"),
                Spread.of(p).format("{:.1f}"),
                Spread.of([a / b for a, b in zip(g, p, strict=True)]).format(suffix="×"),
                f"≤ 1.0× at the median: {'met' if met else 'NOT met'}",
            )
        console.print(table)
    return 0 if met_all else 1


if __name__ == "__main__":
    sys.exit(main())
