"""`make bench-runtime-breakdown`: where `make bench-runtime`'s CPU goes, process by process.

Three measurements on the same Redis broker and store as bench.runtime:

1. End to end (wrk submitting for `--seconds`): tasks/s, and CPU ms per task of the
   gateway, the worker and redis-server (utime + stime from /proc).
2. The gateway alone (its worker stopped with SIGSTOP): submits/s and CPU ms per submit.
3. The worker alone draining that backlog (SIGCONT): tasks/s, CPU ms per task and
   context switches per task (all its threads), against a bare Dramatiq worker running
   as many no-op messages.

Linux only (/proc). Usage: python -m bench.runtime_breakdown [--seconds 8] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.cluster import BareDramatiq, Grey
from bench.runtime import START_TIMEOUT, wrk_submit

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def context_switches(pid: int) -> int:
    total = 0
    for thread in os.listdir(f"/proc/{pid}/task"):
        for line in Path(f"/proc/{pid}/task/{thread}/status").read_text().splitlines():
            if "ctxt_switches" in line:
                total += int(line.split()[1])
    return total


def redis_pid() -> int:
    found = subprocess.run(["pgrep", "-x", "redis-server"], capture_output=True, text=True).stdout.split()
    if not found:
        raise SystemExit("redis-server is not running on this machine")
    return int(found[0])


def end_to_end(grey: Grey, seconds: float) -> None:
    pids = {"gateway": grey.gateway.pid, "worker": grey.worker.pid, "redis": redis_pid()}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    wrk_submit(grey, seconds)
    grey.wait_idle()
    used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    count, span = grey.span()
    print(f"end to end: {count} tasks, {count / span:,.0f} tasks/s")
    for name, spent in used.items():
        print(f"  {name:8s} {1000 * spent / count:5.2f} ms CPU per task")


def gateway_then_drain(grey: Grey, seconds: float) -> int:
    """The gateway alone, then the worker alone; returns the drained count."""
    grey.worker.send_signal(signal.SIGSTOP)
    before = grey.counts()["pending"]
    spent, started = cpu_seconds(grey.gateway.pid), time.monotonic()
    wrk_submit(grey, seconds)
    wall = time.monotonic() - started
    submitted = grey.counts()["pending"] - before
    spent = cpu_seconds(grey.gateway.pid) - spent
    per_submit = 1000 * spent / submitted
    print(f"gateway alone: {submitted / wall:,.0f} submits/s, {per_submit:.2f} ms CPU per submit")
    pid = grey.worker.pid
    spent, switches, started = cpu_seconds(pid), context_switches(pid), time.monotonic()
    grey.worker.send_signal(signal.SIGCONT)
    grey.wait_idle()
    wall = time.monotonic() - started
    spent, switches = cpu_seconds(pid) - spent, context_switches(pid) - switches
    print(
        f"worker alone: drained {submitted} at {submitted / wall:,.0f} tasks/s, "
        f"{1000 * spent / submitted:.2f} ms CPU and {switches / submitted:.0f} context switches per task"
    )
    return submitted


def bare_worker(count: int, threads: int) -> None:
    bare = BareDramatiq(count, threads)
    spent, switches = cpu_seconds(bare.pid), context_switches(bare.pid)
    bare.send()
    bare.finished()
    spent, switches = cpu_seconds(bare.pid) - spent, context_switches(bare.pid) - switches
    bare.wait()
    print(
        f"bare Dramatiq worker: {1000 * spent / count:.2f} ms CPU and "
        f"{switches / count:.0f} context switches per message"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.runtime_breakdown")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long wrk submits, each time")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (both systems)")
    parser.add_argument("--database-url", default=None, help="store (default: a fresh SQLite file)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="grey-bench-"))
    grey = Grey(
        args.database_url or f"sqlite:///{workdir / 'grey.db'}",
        args.threads,
        workdir,
        start_timeout=START_TIMEOUT,
    )
    try:
        end_to_end(grey, args.seconds)
        drained = gateway_then_drain(grey, args.seconds)
    finally:
        grey.worker.send_signal(signal.SIGCONT)
        grey.stop()
    bare_worker(drained, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
