"""Many /ws/telemetry clients against a live `grey serve`, with the server's memory and file
descriptors recorded before, during and after (from /proc/<pid>).

    python -m loadtest.websocket --clients 500 --seconds 30            # starts its own grey serve
    python -m loadtest.websocket --url ws://127.0.0.1:8083 --key K --pid PID --clients 500
    python -m loadtest.websocket --locust --clients 500 --seconds 30   # Locust users as clients

With no `--url` it starts `grey serve` in a temporary home (SQLite, embedded broker, no
in-process workers, `GREY_WS_CONNECTIONS_PER_CLIENT` raised to the client count: every client
uses the one admin key) and stops it at the end. While the clients listen, it registers and
disconnects a worker every `--event-every` seconds through the store, so each client measures
how long events take to reach it (the change's commit → the message's arrival).

With `--locust` the clients are the users of `loadtest/locust_websocket.py`, run headless by a
`locust` subprocess (ramped at `--ramp` users/s, stopped after `--seconds`, its CSVs under
`--out`); their figures are Locust's: users reached, messages per type, failures, and each
message's age on arrival (its server `timestamp` → receipt) as the response-time percentiles.
Either way the figures are printed as a table and plotted to `<out>/websocket.png`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from bench.serving import free_port

ROOT = Path(__file__).resolve().parents[1]
LOCUST_USER = ROOT / "loadtest" / "locust_websocket.py"
PERCENTILES = ("50%", "95%", "99%", "100%")


@dataclass
class LocustFigures:
    """What the Locust run reported (its CSVs), and how it ended."""

    returncode: int | None = None
    users_reached: int = 0
    nofile: str = "?"  # the locust process's open-files limit (soft)
    rows: list[dict[str, str]] = field(default_factory=list)  # _stats.csv, one per request name
    history: list[tuple[float, int]] = field(default_factory=list)  # (t s, users)
    failures: list[dict[str, str]] = field(default_factory=list)
    exceptions: list[dict[str, str]] = field(default_factory=list)
    log: Path | None = None

    def row(self, name: str) -> dict[str, str] | None:
        return next((row for row in self.rows if row["Name"] == name), None)


@dataclass
class Figures:
    connected: int = 0
    refused: int = 0
    messages: int = 0
    updates: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    samples: list[tuple[str, int, int]] = field(default_factory=list)  # (when, rss KiB, fds)
    series: list[tuple[float, int, int]] = field(default_factory=list)  # (t s, rss KiB, fds)
    locust: LocustFigures | None = None


def proc_figures(pid: int) -> tuple[int, int]:
    """(RSS in KiB, open file descriptors) of a process, from /proc."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def start_server(home: Path, clients: int) -> tuple[subprocess.Popen[str], str, str]:
    """`grey serve` for the run: (process, CloudAI's ws:// base, the admin key)."""
    cloudai = free_port()
    env = {
        **os.environ,
        "GREY_HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "GREY_APIS": "cloudai",
        "GREY_CLOUDAI_REST_PORT": str(cloudai),
        "GREY_WORKER_THREADS": "0",
        "GREY_WS_CONNECTIONS_PER_CLIENT": str(clients + 10),
        "GREY_CLOUDAI_TELEMETRY_INTERVAL_SECONDS": os.environ.get(
            "GREY_CLOUDAI_TELEMETRY_INTERVAL_SECONDS", "5"
        ),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    key = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        if match := re.search(r"(grey_api_key_\S+)", line):
            key = match.group(1)
        if line.startswith("Broker"):
            break
    if key is None:
        process.kill()
        raise SystemExit("grey serve did not start (no admin key printed)")
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", cloudai), timeout=0.5):
            return process, f"ws://127.0.0.1:{cloudai}", key
        time.sleep(0.1)
    process.kill()
    raise SystemExit("grey serve did not listen")


async def client(
    url: str, key: str, stop: asyncio.Event, figures: Figures, changed: dict[str, float]
) -> None:
    try:
        async with connect(
            f"{url}/ws/telemetry", additional_headers={"X-API-Key": key}, open_timeout=30
        ) as ws:
            figures.connected += 1
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                arrived = time.time()
                message = json.loads(raw)
                figures.messages += 1
                if message["type"] == "telemetry_update":
                    figures.updates += 1
                elif message["type"].startswith("worker_"):
                    at = changed.get(f"{message['type']}:{message['data']['worker_id']}")
                    if at is not None:
                        figures.latencies_ms.append(1000 * (arrived - at))
    except Exception:
        figures.refused += 1


def _node(node_id: str) -> Any:
    from runtime.store import NodeRecord
    from runtime.store.coltypes import utc_now

    now = utc_now()
    capacity = {"cpu_cores": 4.0, "memory_gb": 8.0, "storage_gb": 50.0, "gpus": 0}
    return NodeRecord(
        node_id=node_id,
        role="worker",
        status="active",
        address="127.0.0.1:0",
        started_at=now - timedelta(seconds=1),
        pool="cpu",
        last_heartbeat=now,
        resources=dict(capacity),
        info={"capacity": capacity, "containers": False, "containers_reason": "load test"},
    )


async def changes(
    database_url: str | None, every: float, stop: asyncio.Event, changed: dict[str, float]
) -> None:
    """A worker registered, then disconnected, every `every` seconds (when the store is known)."""
    if database_url is None:
        return
    from runtime.store import Store

    store = Store.open(database_url)
    try:
        n = 0
        while not stop.is_set():
            name = f"load-{n}"
            await asyncio.to_thread(store.nodes.upsert, _node(name))
            changed[f"worker_registered:{name}"] = time.time()
            await asyncio.sleep(every / 2)
            await asyncio.to_thread(store.nodes.set_status, name, "down")
            changed[f"worker_disconnected:{name}"] = time.time()
            await asyncio.sleep(every / 2)
            n += 1
    finally:
        store.dispose()


async def run(
    args: argparse.Namespace, url: str, key: str, pid: int | None, database_url: str | None
) -> Figures:
    figures = Figures()
    stop = asyncio.Event()
    changed: dict[str, float] = {}

    sample, _ = _sampler(figures, pid)
    sample("before")
    clients = []
    for n in range(args.clients):
        clients.append(asyncio.ensure_future(client(url, key, stop, figures, changed)))
        if n % 50 == 49:
            await asyncio.sleep(0.05)  # a ramp: not one SYN flood
    events = asyncio.ensure_future(changes(database_url, args.event_every, stop, changed))
    started = time.monotonic()
    await _hold(sample, started, args.seconds, lambda: time.monotonic() - started >= args.seconds)
    stop.set()
    await asyncio.gather(*clients, events, return_exceptions=True)
    await _settle(sample)
    return figures


def _sampler(figures: Figures, pid: int | None) -> tuple[Any, float]:
    """sample(label): the server's /proc figures into the series (and, labelled, the table)."""
    began = time.time()

    def sample(when: str | None) -> None:
        if pid is None:
            return
        with contextlib.suppress(OSError):
            rss, fds = proc_figures(pid)
            figures.series.append((time.time() - began, rss, fds))
            if when is not None:
                figures.samples.append((when, rss, fds))

    return sample, began


async def _hold(sample: Any, started: float, seconds: float, done: Any) -> None:
    """Sample every second until done(): labelled "during" every 5 s and once near `seconds`
    (while the clients still hold their connections)."""
    labelled, last = started, False
    while not done():
        await asyncio.sleep(1.0)
        now = time.monotonic()
        if now - labelled >= 5.0 - 0.05 or (not last and now - started >= seconds - 1.0):
            labelled, last = now, last or now - started >= seconds - 1.0
            sample(f"during t={now - started:.0f}s")
        else:
            sample(None)


async def _settle(sample: Any) -> None:
    """Two seconds for the server's side of the connections to close, then "after"."""
    for _ in range(2):
        await asyncio.sleep(1.0)
        sample(None)
    sample("after")


def _nofile(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return line.split()[3]
    return "?"


def _raise_nofile(clients: int) -> None:
    """In the locust child: room for a socket per user (and then some) under the hard limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * clients + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard)
        )


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


async def run_locust(
    args: argparse.Namespace, url: str, key: str, pid: int | None, database_url: str | None
) -> Figures:
    """The same run, its clients Locust users (`loadtest/locust_websocket.py`, headless)."""
    figures = Figures()
    lf = figures.locust = LocustFigures()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prefix = out / "websocket_locust"
    for stale in out.glob("websocket_locust_*.csv"):
        stale.unlink()
    lf.log = out / "websocket_locust.log"
    stop = asyncio.Event()
    changed: dict[str, float] = {}
    sample, began = _sampler(figures, pid)
    sample("before")
    command = [
        *(sys.executable, "-m", "locust", "-f", str(LOCUST_USER), "--headless"),
        *("-u", str(args.clients), "-r", str(args.ramp), "-t", f"{args.seconds:g}s"),
        *("--host", url.replace("ws", "http", 1), "--csv", str(prefix), "--only-summary"),
        *("--stop-timeout", "5", "--loglevel", "WARNING"),
    ]
    env = {**os.environ, "GREY_API_KEY": key, "PYTHONUNBUFFERED": "1"}
    with lf.log.open("w") as log:
        locust = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: _raise_nofile(args.clients),
        )
        with contextlib.suppress(OSError):
            lf.nofile = _nofile(locust.pid)
        events = asyncio.ensure_future(changes(database_url, args.event_every, stop, changed))
        started = time.monotonic()
        limit = started + args.seconds + 60
        try:
            await _hold(
                sample, started, args.seconds, lambda: locust.poll() is not None or time.monotonic() > limit
            )
        finally:
            if locust.poll() is None:
                locust.kill()
            lf.returncode = locust.wait()
            stop.set()
            await asyncio.gather(events, return_exceptions=True)
    await _settle(sample)
    lf.rows = [row for row in _read_csv(Path(f"{prefix}_stats.csv")) if row["Name"] != "Aggregated"]
    for row in _read_csv(Path(f"{prefix}_stats_history.csv")):
        users = int(row["User Count"] or 0)
        lf.users_reached = max(lf.users_reached, users)
        lf.history.append((float(row["Timestamp"]) - began, users))
    lf.failures = _read_csv(Path(f"{prefix}_failures.csv"))
    lf.exceptions = _read_csv(Path(f"{prefix}_exceptions.csv"))
    connect = lf.row("connect")
    if connect is not None:
        figures.connected = int(connect["Request Count"]) - int(connect["Failure Count"])
        figures.refused = int(connect["Failure Count"])
    for row in lf.rows:
        if row["Name"] != "connect":
            figures.messages += int(row["Request Count"])
            if row["Name"] == "telemetry_update":
                figures.updates += int(row["Request Count"])
    return figures


def report(args: argparse.Namespace, figures: Figures) -> str:
    lines = [
        f"clients {args.clients} for {args.seconds:.0f} s: connected {figures.connected}, "
        f"failed {figures.refused}, messages {figures.messages} ({figures.updates} telemetry_update)"
    ]
    if figures.latencies_ms:
        ordered = sorted(figures.latencies_ms)
        p95 = ordered[int(0.95 * (len(ordered) - 1))]
        lines.append(
            f"event delivery ({len(ordered)} receipts): p50 {statistics.median(ordered):.1f} ms, "
            f"p95 {p95:.1f} ms, max {ordered[-1]:.1f} ms"
        )
    lf = figures.locust
    if lf is not None:
        lines.append(
            f"locust: users reached {lf.users_reached}, exit code {lf.returncode}, "
            f"open-files limit {lf.nofile}, failures {sum(int(f['Occurrences']) for f in lf.failures)}, "
            f"exceptions {sum(int(e['Count']) for e in lf.exceptions)} (log: {lf.log})"
        )
        for row in lf.rows:
            ages = ", ".join(f"{_label(p)} {row[p]} ms" for p in PERCENTILES)
            what = "connect time" if row["Name"] == "connect" else "message age"
            lines.append(
                f"locust {row['Name']}: {row['Request Count']} ({row['Failure Count']} failed), {what} {ages}"
            )
        for failure in lf.failures:
            lines.append(f"locust failure {failure['Name']}: {failure['Error']} ×{failure['Occurrences']}")
        for exception in lf.exceptions:
            lines.append(f"locust exception ×{exception['Count']}: {exception['Message']}")
    for when, rss, fds in figures.samples:
        lines.append(f"server {when:<14} RSS {rss / 1024:7.1f} MiB  fds {fds}")
    return "\n".join(lines)


def _label(percentile: str) -> str:
    return "max" if percentile == "100%" else f"p{percentile.rstrip('%')}"


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {p: ordered[round(float(p.rstrip("%")) / 100 * (len(ordered) - 1))] for p in PERCENTILES}


def latency_rows(figures: Figures) -> list[tuple[str, int, int, dict[str, float]]]:
    """(name, count, failures, {percentile: ms}): Locust's rows, or the asyncio clients' receipts."""
    if figures.locust is not None:
        return [
            (
                row["Name"],
                int(row["Request Count"]),
                int(row["Failure Count"]),
                {p: float(row[p]) if row[p] not in ("", "N/A") else float("nan") for p in PERCENTILES},
            )
            for row in figures.locust.rows
        ]
    if not figures.latencies_ms:
        return []
    return [("worker events", len(figures.latencies_ms), 0, _percentiles(figures.latencies_ms))]


def table(args: argparse.Namespace, figures: Figures) -> Any:
    """The figures as rich tables: the clients' messages and latencies, the server's RSS/fds."""
    from rich.console import Group
    from rich.table import Table

    mode = "Locust users" if figures.locust is not None else "asyncio clients"
    messages = Table(
        title=f"/ws/telemetry: {args.clients} {mode}, {args.seconds:g} s — "
        f"connected {figures.connected}, failed {figures.refused}"
    )
    messages.add_column("message")
    messages.add_column("count", justify="right")
    messages.add_column("failed", justify="right")
    for p in PERCENTILES:
        messages.add_column(f"{_label(p)} ms", justify="right")
    for name, count, failed, ages in latency_rows(figures):
        messages.add_row(name, str(count), str(failed), *(f"{ages[p]:.1f}" for p in PERCENTILES))
    server = Table(title="grey serve (from /proc)")
    server.add_column("when")
    server.add_column("RSS MiB", justify="right")
    server.add_column("open fds", justify="right")
    for when, rss, fds in figures.samples:
        server.add_row(when, f"{rss / 1024:.1f}", str(fds))
    return Group(messages, server)


def plot(args: argparse.Namespace, figures: Figures, path: Path) -> str:
    """RSS and fds over time (and Locust's users), latency percentiles per message type."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is not installed"
    fig, (memory, descriptors, latency) = plt.subplots(3, 1, figsize=(9, 11))
    t = [s[0] for s in figures.series]
    memory.plot(t, [s[1] / 1024 for s in figures.series], color="tab:blue")
    memory.set_ylabel("server RSS (MiB)")
    memory.set_xlabel("s")
    memory.set_title(f"grey serve under {args.clients} /ws/telemetry clients")
    descriptors.plot(t, [s[2] for s in figures.series], color="tab:orange", label="server open fds")
    descriptors.set_ylabel("open fds")
    descriptors.set_xlabel("s")
    if figures.locust is not None and figures.locust.history:
        users = descriptors.twinx()
        users.step(
            [h[0] for h in figures.locust.history],
            [h[1] for h in figures.locust.history],
            where="post",
            color="tab:green",
            label="Locust users",
        )
        users.set_ylabel("Locust users")
        descriptors.legend(
            descriptors.get_legend_handles_labels()[0] + users.get_legend_handles_labels()[0],
            descriptors.get_legend_handles_labels()[1] + users.get_legend_handles_labels()[1],
            loc="upper right",
        )
    rows = latency_rows(figures)
    width = 0.8 / len(PERCENTILES)
    for i, p in enumerate(PERCENTILES):
        latency.bar(
            [n + i * width for n in range(len(rows))],
            [r[3][p] for r in rows],
            width,
            label=_label(p),
        )
    latency.set_xticks([n + 0.4 - width / 2 for n in range(len(rows))], [r[0] for r in rows])
    latency.set_ylabel("ms")
    latency.set_title(
        "message age on arrival (connect: connect time)" if figures.locust else "event delivery"
    )
    if rows:
        latency.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"plot: {path}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--url", help="CloudAI's ws:// base of a running server (default: start one)")
    parser.add_argument("--key", default=os.environ.get("GREY_API_KEY", ""))
    parser.add_argument("--pid", type=int, help="the server's pid, for /proc figures")
    parser.add_argument("--database-url", help="the server's store: events are made through it")
    parser.add_argument("--event-every", type=float, default=1.0)
    parser.add_argument("--locust", action="store_true", help="clients: Locust users, headless")
    parser.add_argument("--ramp", type=float, default=100.0, help="Locust users started per second")
    parser.add_argument("--out", default=str(ROOT / "out" / "loadtest"), help="plot and Locust CSVs")
    args = parser.parse_args(argv)
    process = None
    with tempfile.TemporaryDirectory() as home:
        if args.url is None:
            process, url, key = start_server(Path(home), args.clients)
            pid: int | None = process.pid
            database_url: str | None = f"sqlite:///{Path(home) / 'grey.db'}"
        else:
            url, key, pid, database_url = args.url, args.key, args.pid, args.database_url
        try:
            runner = run_locust if args.locust else run
            figures = asyncio.run(runner(args, url, key, pid, database_url))
        finally:
            if process is not None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=15)
    print(report(args, figures))
    from rich.console import Console

    Console(width=110).print(table(args, figures))
    print(plot(args, figures, Path(args.out) / "websocket.png"))
    if figures.locust is not None and (
        figures.locust.returncode != 0 or figures.locust.failures or figures.locust.exceptions
    ):
        return 1
    return 0 if figures.connected == args.clients else 1


if __name__ == "__main__":
    sys.exit(main())
