"""Reads against history: every API read at 10⁴, 10⁵ and 10⁶ stored tasks (issue #14).

`make bench-scale` (`python -m bench.scale`) fills one store per size and engine (SQLite
files, PostgreSQL databases `grey_bench_scale_<size>`) and keeps them for the next run
(`out/bench/scale/` holds the SQLite files and a marker per filled store; `--rebuild`
fills again). Then it times each read through Grey's REST app in process (httpx over
ASGI: auth, validation, handler, store; no socket), median of `--calls` calls, and prints
the table with the ratio of the largest size to the smallest.

The fill models a deployment that has run for a while at a steady rate: 4 tenants, one
task a second (so the newest hour holds the same tasks at every size), the newest 200
pending and the 100 before them running (the live work does not grow with history), the
rest finished (90 % completed, 5 % failed, 3 % cancelled, 2 % timeout) with two events
each (running, then the ending), two labels per task (`team=team0..7`, `env`), 5 % of
tasks of type `batch`. Tasks and labels go in through the store's submit path
(`TaskRepository.insert_many`); their runs are written in bulk with the store's event
rows (runtime.store.task_rows.event_row). PostgreSQL stores are then VACUUM ANALYZEd (what
autovacuum does to a table grown by inserts); SQLite stores get no ANALYZE, as in Grey.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import bindparam, create_engine, text, update
from sqlalchemy.engine import make_url

from runtime.store import NewTask, Store
from runtime.store.cursor import encode_cursor
from runtime.store.schema import tasks
from runtime.store.task_rows import INSERT_EVENT, event_row

OUT = Path("out/bench/scale")
SIZES = (10_000, 100_000, 1_000_000)
TENANTS = tuple(f"tenant-{n}" for n in range(4))
PENDING, RUNNING = 200, 100  # the newest tasks: live work, the same at every size
CHUNK = 5_000
#: Shares of the finished tasks' endings, in percent.
ENDINGS = ((90, "completed"), (5, "failed"), (3, "cancelled"), (2, "timeout"))
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def status_of(index_from_newest: int) -> str:
    if index_from_newest < PENDING:
        return "pending"
    if index_from_newest < PENDING + RUNNING:
        return "running"
    bucket, cumulative = index_from_newest // len(TENANTS) % 100, 0  # the same shares per tenant
    for share, status in ENDINGS:
        cumulative += share
        if bucket < cumulative:
            return status
    raise AssertionError("shares sum to 100")


def new_task(index: int, size: int, now: datetime) -> NewTask:
    """Task `index` (0 = oldest) of a store of `size`: created one second after the one before."""
    created = now - timedelta(seconds=size - index)
    own = index // len(TENANTS)  # the task's number within its tenant: shares per tenant
    return NewTask(
        tenant_id=TENANTS[index % len(TENANTS)],
        type="batch" if own % 20 == 7 else "stateless",
        payload={"function": "echo", "data": {"n": index}},
        priority=("normal", "high", "low", "critical")[own % 7 % 4],
        labels={"team": f"team{own % 8}", "env": "prod" if own % 3 else "dev"},
        task_id=f"task_{index:07d}-{size}",
        created_at=created,
    )


def _finish(store: Store, news: list[NewTask], size: int, first: int) -> None:
    """Runs of the chunk's tasks: running ones started, finished ones ended, in bulk."""
    started, ended, events = [], [], []
    for offset, new in enumerate(news):
        status = status_of(size - 1 - (first + offset))
        if status == "pending":
            continue
        start = new.created_at + timedelta(milliseconds=40)
        end = start + timedelta(milliseconds=250)
        events.append(event_row(new.task_id, 1, "running", 0, None, start))
        row: dict[str, Any] = {
            "w_id": new.task_id,
            "status": status,
            "started_at": start,
            "executed_on": "bench-node",
            "attempt": 1,
            "queue_time_ms": 40,
            "updated_at": start,
            "event_seq": 1,
            "progress": 0,
        }
        if status == "running":
            row |= {"lease_expires_at": end + timedelta(days=3650)}
            started.append(row)
            continue
        done = status == "completed"
        row |= {
            "completed_at": end,
            "duration_ms": 290,
            "execution_time_ms": 250,
            "updated_at": end,
            "event_seq": 2,
            "progress": 100 if done else 0,
            "result": {"echo": new.payload["data"]} if done else None,
            "error": None if done else {"code": status, "message": f"bench: {status}"},
        }
        ended.append(row)
        events.append(event_row(new.task_id, 2, status, row["progress"], None, end))
    with store.engine.begin() as conn:
        for rows in (started, ended):
            if rows:
                names = sorted(set(rows[0]) - {"w_id"})
                stmt = (
                    update(tasks)
                    .where(tasks.c.task_id == bindparam("w_id"))
                    .values({name: bindparam(name) for name in names})
                )
                conn.execute(stmt, rows)
        if events:
            conn.execute(INSERT_EVENT, events)


def fill(store: Store, size: int, progress: Callable[[int], None]) -> None:
    now = datetime.now(UTC)
    for first in range(0, size, CHUNK):
        news = [new_task(i, size, now) for i in range(first, min(size, first + CHUNK))]
        for outcome in store.tasks.insert_many(news):
            if isinstance(outcome, Exception):
                raise outcome
        _finish(store, news, size, first)
        progress(len(news))
    if store.engine.dialect.name == "postgresql":
        # What autovacuum does to a table that grew by inserts (statistics, visibility map);
        # SQLite gets nothing: Grey never runs ANALYZE there, so neither does the bench.
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))


@dataclass(frozen=True, slots=True)
class Target:
    engine: str  # sqlite | postgresql
    size: int

    @property
    def url(self) -> str:
        if self.engine == "sqlite":
            return f"sqlite:///{OUT / f'scale-{self.size}.db'}"
        return str(make_url(ADMIN_URL).set(database=f"grey_bench_scale_{self.size}").render_as_string(False))

    @property
    def marker(self) -> Path:
        return OUT / f"{self.engine}-{self.size}.filled"

    def drop(self) -> None:
        self.marker.unlink(missing_ok=True)
        if self.engine == "sqlite":
            for suffix in ("", "-wal", "-shm", "-writelock"):
                Path(f"{OUT / f'scale-{self.size}.db'}{suffix}").unlink(missing_ok=True)
            return
        admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = f"grey_bench_scale_{self.size}"
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()


# -- the reads --------------------------------------------------------------------------


def _calls(size: int, key: str) -> list[tuple[str, Callable[[httpx.AsyncClient], Awaitable[object]]]]:
    """(name, call) of every read the issue lists; deep pages start mid-history."""
    headers = {"X-API-Key": key}
    mid = datetime.now(UTC) - timedelta(seconds=size // 2)
    deep = encode_cursor(mid, "task_z")
    some_task = f"task_{size // 2 - (size // 2) % len(TENANTS):07d}-{size}"  # tenant-0's, completed

    def get(path: str, **params: str | int) -> Callable[[httpx.AsyncClient], Awaitable[object]]:
        async def call(client: httpx.AsyncClient) -> object:
            answer = await client.get(path, params=params, headers=headers)
            if answer.status_code != 200:
                raise RuntimeError(f"{path} {params}: {answer.status_code} {answer.text[:200]}")
            return answer

        return call

    async def submit(client: httpx.AsyncClient) -> object:
        body = {"type": "stateless", "payload": {"function": "echo", "data": {}}, "labels": {"team": "bench"}}
        answer = await client.post("/v1/tasks", json=body, headers=headers)
        if answer.status_code != 201:
            raise RuntimeError(f"submit: {answer.status_code} {answer.text[:200]}")
        return answer

    async def first_message(client: httpx.AsyncClient) -> object:
        async with client.stream("GET", f"/v1/tasks/{some_task}/stream", headers=headers) as answer:
            async for line in answer.aiter_lines():
                if line.startswith("data:"):
                    return line
        raise RuntimeError("stream sent no message")

    return [
        ("GET /health", get("/health")),
        ("GET /v1/tasks?limit=100", get("/v1/tasks", limit=100)),
        ("… deep cursor page (mid-history)", get("/v1/tasks", limit=100, cursor=deep)),
        ("… ?status=completed", get("/v1/tasks", limit=100, status="completed")),
        ("… ?status=failed (5 %)", get("/v1/tasks", limit=100, status="failed")),
        ("… ?status=running,pending", get("/v1/tasks", limit=100, status="running,pending")),
        ("… ?status=completed deep", get("/v1/tasks", limit=100, status="completed", cursor=deep)),
        ("… ?type=batch (5 %)", get("/v1/tasks", limit=100, type="batch")),
        ("… ?label=team=team3", get("/v1/tasks", limit=100, label="team=team3")),
        ("… ?label=team=team3 deep", get("/v1/tasks", limit=100, label="team=team3", cursor=deep)),
        ("… ?label= no match", get("/v1/tasks", limit=100, label="team=nobody")),
        ("GET /v1/cluster/usage", get("/v1/cluster/usage")),
        ("GET /v1/cluster/health", get("/v1/cluster/health")),
        ("GET /v1/tasks/{id}", get(f"/v1/tasks/{some_task}")),
        ("POST /v1/tasks", submit),
        ("stream: first message", first_message),
    ]


async def _measure(targets: list[Target], calls: int) -> dict[tuple[str, int], dict[str, float]]:
    """Median ms of each read against each filled store. The stores take turns call by call
    (10⁴, 10⁵, 10⁶, 10⁴, ...), so load from elsewhere on the box weighs on every size alike."""
    from runtime.gateway.app import Platform
    from runtime.services import Services
    from runtime.services.auth import SCOPES
    from runtime.settings import Settings

    opened: list[Services] = []
    try:
        clients, reads = [], []
        for target in targets:
            services = Services.open(Settings(database_url=target.url, credential_cache_seconds=60.0))
            opened.append(services)
            key = services.auth.create_key(TENANTS[0], SCOPES)
            transport = httpx.ASGITransport(app=Platform.build(services).rest)
            clients.append(httpx.AsyncClient(transport=transport, base_url="http://grey.bench"))
            reads.append(_calls(target.size, key))
        times: dict[tuple[int, str], list[float]] = {}
        for index, name in enumerate(name for name, _ in reads[0]):
            for turn, (client, calls_of) in enumerate(zip(clients, reads, strict=True)):
                await calls_of[index][1](client)  # warm: caches, statements, pages
                times[(turn, name)] = []
            for _ in range(calls):
                for turn, (client, calls_of) in enumerate(zip(clients, reads, strict=True)):
                    start = time.perf_counter()
                    await calls_of[index][1](client)
                    times[(turn, name)].append((time.perf_counter() - start) * 1000)
        for client in clients:
            await client.aclose()
        names = [name for name, _ in reads[0]]
        return {
            (target.engine, target.size): {name: statistics.median(times[(turn, name)]) for name in names}
            for turn, target in enumerate(targets)
        }
    finally:
        for services in opened:
            services.close()


def _markdown(figures: dict[tuple[str, int], dict[str, float]], engines: list[str], sizes: list[int]) -> str:
    """The table as the README carries it."""
    small, large = sizes[0], sizes[-1]
    head = ["call"]
    for engine in engines:
        head += [f"{engine} {size:,}" for size in sizes] + [f"{engine} {large:,}/{small:,}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in figures[(engines[0], small)]:
        cells = [name]
        for engine in engines:
            cells += [f"{figures[(engine, size)][name]:.1f} ms" for size in sizes]
            cells.append(f"{figures[(engine, large)][name] / figures[(engine, small)][name]:.2f}×")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _targets(engines: list[str], sizes: list[int]) -> Iterator[Target]:
    for engine in engines:
        for size in sizes:
            yield Target(engine, size)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    parser = argparse.ArgumentParser(prog="bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="task counts, smallest first")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--calls", type=int, default=50, help="calls per read and size (median reported)")
    parser.add_argument("--rebuild", action="store_true", help="fill every store again")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    engines = [e for e in args.engines.split(",") if e]
    console = Console(width=max(120, 40 + 12 * len(sizes) * len(engines)))
    OUT.mkdir(parents=True, exist_ok=True)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        for target in _targets(engines, sizes):
            if target.marker.exists() and not args.rebuild:
                continue
            target.drop()
            bar = progress.add_task(f"filling {target.engine} {target.size:,}", total=target.size)
            with Store.open(target.url) as store:
                fill(store, target.size, partial(progress.advance, bar))
            target.marker.write_text(datetime.now(UTC).isoformat())

    figures: dict[tuple[str, int], dict[str, float]] = {}
    for engine in engines:
        console.print(f"measuring {engine}: {args.calls} calls per read and size, sizes taking turns")
        figures |= asyncio.run(_measure(list(_targets([engine], sizes)), args.calls))

    small, large = sizes[0], sizes[-1]
    table = Table(title=f"median ms of {args.calls} calls (2 shared cores); ratio = {large:,} / {small:,}")
    table.add_column("call")
    for engine in engines:
        for size in sizes:
            table.add_column(f"{engine} {size:,}", justify="right")
        table.add_column(f"{engine} ratio", justify="right")
    worst = 0.0
    names = list(figures[(engines[0], small)])
    for name in names:
        cells = []
        for engine in engines:
            cells += [f"{figures[(engine, size)][name]:.1f}" for size in sizes]
            ratio = figures[(engine, large)][name] / figures[(engine, small)][name]
            worst = max(worst, ratio)
            cells.append(f"{ratio:.2f}×")
        table.add_row(name, *cells)
    console.print(table)
    console.print(_markdown(figures, engines, sizes), markup=False, highlight=False, soft_wrap=True)
    verdict = "met" if worst <= 2.0 else "NOT met"
    console.print(f"worst ratio {worst:.2f}× (target ≤ 2×): {verdict}")
    return 0 if worst <= 2.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
