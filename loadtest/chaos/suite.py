"""`python -m loadtest.chaos` (`make chaos`): faults injected into a real cluster, judged.

Starts its own redis-server on a free port, creates a PostgreSQL database of its own per
scenario (on 127.0.0.1:5432, or GREY_TEST_POSTGRES_URL; dropped at the end), and runs each
scenario of `loadtest.chaos.scenarios` on PostgreSQL and on SQLite where it makes sense.
Prints a table, writes the outcomes as JSON (default out/chaos/chaos-<size>.json; process
logs and ledgers under out/chaos/<size>-<time>/), and exits 1 if any scenario failed, 2 if
what it needs (redis-server, PostgreSQL) is missing. Everything binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from bench.cluster import POSTGRES_ADMIN_URL, ROOT, RedisServer
from loadtest.chaos.scenarios import DEFAULT_GRACE, HEARTBEAT, SCENARIOS, SIZES, Outcome, Suite, run_scenario

STORES = ("postgresql", "sqlite")


def postgres_problem(admin_url: str) -> str | None:
    """None if PostgreSQL answers at `admin_url`, else what is wrong."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    url = make_url(admin_url)
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        reason = " ".join(str(getattr(error, "orig", error)).split())[:200]
        return f"PostgreSQL at {url.host}:{url.port} is missing ({reason})"
    finally:
        engine.dispose()
    return None


def commit_state() -> str:
    """`<commit>` plus `+ uncommitted changes` when the work tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    if not dirty:
        return head
    diff = subprocess.run(["git", "diff", "HEAD"], cwd=ROOT, capture_output=True, check=False).stdout
    return f"{head} + uncommitted changes (diff sha256 {hashlib.sha256(diff).hexdigest()[:10]})"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table_rows(outcomes: list[Outcome]) -> list[list[str]]:
    rows = []
    for o in outcomes:
        counted = o.result in ("pass", "fail")
        figures = (
            [str(o.tasks), str(o.lost), str(o.finished_twice), str(o.extra_runs)] if counted else ["-"] * 4
        )
        result = o.result.upper() if o.result != "not run" else "not run"
        if o.reasons and o.result != "pass":
            result += ": " + "; ".join(o.reasons)
        rows.append(
            [o.fault, o.store, *figures, seconds(o.recovery_seconds), seconds(o.drained_seconds), result]
        )
    return rows


HEADERS = [
    "fault",
    "store",
    "tasks",
    "lost",
    "finished twice",
    "extra runs",
    "recovery s",
    "all ended s",
    "result",
]


def markdown(outcomes: list[Outcome]) -> str:
    """The table as Markdown (for the README)."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += [
        "| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in table_rows(outcomes)
    ]
    return "\n".join(lines)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.table import Table

    parser = argparse.ArgumentParser(prog="python -m loadtest.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full", help="small: what CI runs")
    parser.add_argument("--stores", default=",".join(STORES), help="postgresql,sqlite (default both)")
    parser.add_argument(
        "--scenarios",
        default="",
        help="comma-separated keys, each run on every store it suits (default: all): "
        + ", ".join(s.key for s in SCENARIOS),
    )
    parser.add_argument("--json", type=Path, default=None, help="default out/chaos/chaos-<size>.json")
    parser.add_argument("--postgres-admin-url", default=POSTGRES_ADMIN_URL)
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 200)
    # SIGTERM ends the suite as Ctrl-C does: its processes, database and mount are cleaned up.
    signal.signal(signal.SIGTERM, _interrupt)
    size = SIZES[args.size]

    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    wanted = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    unknown = sorted(wanted - {s.key for s in SCENARIOS}) + sorted(set(stores) - set(STORES))
    if unknown:
        parser.error(f"unknown scenario or store: {', '.join(unknown)}")
    missing = []
    if shutil.which("redis-server") is None:
        missing.append("redis-server is not on PATH")
    if "postgresql" in stores and (problem := postgres_problem(args.postgres_admin_url)):
        missing.append(problem)
    if missing:
        console.print("[red]chaos suite cannot run: " + "; ".join(missing) + "[/red]")
        return 2

    def planned(key: str, store: str) -> bool:
        if wanted:
            return key in wanted  # named: on every store it makes sense on
        return store != "sqlite" or size.sqlite is None or key in size.sqlite

    plan = [(s, store) for s in SCENARIOS for store in stores if store in s.stores and planned(s.key, store)]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logs = ROOT / "out" / "chaos" / f"{size.name}-{stamp}"
    json_path = args.json or ROOT / "out" / "chaos" / f"chaos-{size.name}.json"
    commit = commit_state()
    outcomes: list[Outcome] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="grey-chaos-") as scratch:
        redis = RedisServer(Path(scratch) / "redis").start()
        suite = Suite(size, redis, args.postgres_admin_url, Path(scratch), logs)
        try:
            with Progress(
                TextColumn("[bold]{task.fields[scenario]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=console,
                transient=False,
            ) as progress:
                bar = progress.add_task("", total=len(plan), scenario="chaos")
                for scenario, store in plan:
                    label = f"{store} · {scenario.key}"
                    progress.update(bar, scenario=label, description="")

                    def phase(what: str, bar_id: TaskID = bar) -> None:
                        progress.update(bar_id, description=what[:70])

                    outcome = run_scenario(suite, scenario, store, phase)
                    outcomes.append(outcome)
                    progress.update(bar, advance=1, description=outcome.result)
                    colour = {"pass": "green", "not run": "yellow"}.get(outcome.result, "red")
                    progress.console.print(
                        f"[{colour}]{label}: {outcome.result}[/{colour}]"
                        + (f" — {'; '.join(outcome.reasons)}" if outcome.reasons else "")
                    )
        finally:
            redis.kill()
    elapsed = time.monotonic() - started

    grace = size.grace_seconds if size.grace_seconds is not None else DEFAULT_GRACE
    table = Table(
        *HEADERS,
        title=f"Chaos suite, size {size.name} ({commit}); {elapsed:.0f} s",
        caption=(
            f"lost: not terminal {size.bound_seconds:.0f} s after the fault ended; extra runs: ledger runs "
            f"beyond one per task; recovery: fault end -> a new (critical) task completed; all ended: "
            f"fault end -> every task terminal. Heartbeat "
            f"{HEARTBEAT[0]:.0f}/{HEARTBEAT[1]:.0f} s, grace {grace:.0f} s, {size.threads} worker threads."
        ),
        show_lines=True,
    )
    for row in table_rows(outcomes):
        colour = "green" if row[-1] == "PASS" else "yellow" if row[-1].startswith("not run") else "red"
        table.add_row(*row[:-1], f"[{colour}]{row[-1]}[/{colour}]")
    console.print(table)
    for o in outcomes:
        if o.result in ("fail", "error") and o.evidence:
            console.print(f"[bold]{o.store} · {o.scenario}[/bold] evidence (logs: {o.logs}):")
            for line in o.evidence[:10]:
                console.print(f"  {line}", highlight=False, soft_wrap=True)

    json_path.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "size": asdict(size),
        "commit": commit,
        "seconds": round(elapsed, 1),
        "heartbeat": {"interval_seconds": HEARTBEAT[0], "timeout_seconds": HEARTBEAT[1]},
        "logs": str(logs),
        "outcomes": [asdict(o) for o in outcomes],
        "markdown": markdown(outcomes),
    }
    json_path.write_text(json.dumps(report, indent=2))
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "result.json").write_text(json.dumps(report, indent=2))
    console.print(f"JSON: {json_path}; logs: {logs}")
    failed = [o for o in outcomes if o.result in ("fail", "error")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
