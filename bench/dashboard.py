"""The dashboard's first paint against a store of 10⁶ tasks (issue #16), and its cost at the gateway.

`make bench-dashboard` (`python -m bench.dashboard`): one `grey serve` per store size on
the SQLite stores bench.scale fills and keeps under out/bench/scale (filled here first if
missing: the same filler, the same markers), no in-process workers so the stores stay as
filled. Headless Chromium (bench.browser) opens the tasks page `--runs` times per size, the
sizes taking turns, each run in a fresh browser context (cold cache, signed in through
POST /dashboard/session), and reads from the page itself:

- first contentful paint (the `paint` performance entries);
- the time until the first page of tasks is rendered (the first `#tasks tr[data-task-id]`,
  caught by a MutationObserver installed before the page's own scripts run).

It prints min / median / max per size and the ratio of the largest size's median to the
smallest's, then opens one page of the tasks view and counts, at the gateway, the telemetry
subscriptions it costs: the TCP connections the gateway holds once keep-alive connections
have idled out (only the page's WebSocket is left), and the WebSockets the page opened.
Target: first paint < 1 s at 10⁶, one subscription per open page.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.browser import VIEWPORT, Recorder, chromium, chromium_missing
from bench.cluster import KEY_PATTERN, ROOT, Child, wait_healthy
from bench.scale import TENANTS, Target, fill
from bench.serving import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser

SIZES = (10_000, 1_000_000)
KEEP_ALIVE_IDLE_SECONDS = 6.0  # uvicorn closes idle keep-alive connections after 5 s

#: Runs before the page's own scripts: when the first task row appears, and the paint entries.
FIRST_ROWS = """
window.__firstRows = null;
new MutationObserver((_, observer) => {
  if (document.querySelector('#tasks tr[data-task-id]')) {
    window.__firstRows = performance.now();
    observer.disconnect();
  }
}).observe(document, {subtree: true, childList: true});
"""
PAINTS = """() => Object.fromEntries(performance.getEntriesByType('paint').map(e => [e.name, e.startTime]))"""


@dataclass(frozen=True)
class Served:
    url: str
    port: int
    key: str | None  # the admin key `grey serve` printed, on a store that had none
    child: Child
    ports: dict[str, str]  # GREY_<API>_REST_PORT / _GRPC_PORT -> port, every API's

    def rest(self, api: str) -> str:
        """The base URL of an API's REST listener."""
        from runtime.gateway.contracts import CONTRACTS

        return f"http://127.0.0.1:{self.ports[f'{CONTRACTS[api].env_prefix}REST_PORT']}"


@contextlib.contextmanager
def grey_serve(
    workdir: Path, env: dict[str, str], cwd: Path = ROOT, timeout: float = 120
) -> Iterator[Served]:
    """`grey serve` (every API on free ports) until it answers /health; stopped on leaving.
    `cwd` is where the capacity view finds `out/`."""
    import os

    from runtime.gateway.contracts import CONTRACTS

    placed: dict[str, str] = {}
    for contract in CONTRACTS.values():
        placed[f"{contract.env_prefix}REST_PORT"] = str(free_port())
        if contract.grpc_services is not None:
            placed[f"{contract.env_prefix}GRPC_PORT"] = str(free_port())
    rest, grpc = (
        placed[f"{CONTRACTS['grey'].env_prefix}REST_PORT"],
        placed[f"{CONTRACTS['grey'].env_prefix}GRPC_PORT"],
    )
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "GREY_HOME": str(workdir / "home"),
        **placed,
        **env,
    }
    argv = [sys.executable, "-m", "runtime.cli", "serve", "--host", "127.0.0.1"]
    argv += ["--rest-port", rest, "--grpc-port", grpc]
    child = Child("grey-serve", argv, environment, workdir / "serve.log", cwd=cwd)
    child.start()
    url = f"http://127.0.0.1:{rest}"
    try:
        try:
            wait_healthy(url, child, timeout)
        except RuntimeError as failed:
            raise SystemExit(str(failed)) from None
        found = KEY_PATTERN.search(child.log_text())
        yield Served(url, int(rest), found.group(1) if found else None, child, placed)
    finally:
        child.terminate()


def ensure_filled(size: int) -> Target:
    """bench.scale's SQLite store of `size` tasks, filled now if no earlier run left one."""
    from runtime.store import Store

    target = Target("sqlite", size)
    if not target.marker.exists():
        target.marker.parent.mkdir(parents=True, exist_ok=True)
        target.drop()
        started = time.monotonic()
        print(f"filling sqlite {size:,} (bench.scale's filler) ...", flush=True)
        with Store.open(target.url) as store:
            fill(store, size, lambda _: None)
        target.marker.write_text(datetime.now(UTC).isoformat())
        print(f"  filled in {time.monotonic() - started:.0f} s", flush=True)
    return target


def mint_key(database_url: str, tenant: str) -> str:
    """An all-scopes key of one of the filled tenants, written to the store (as bench.scale does)."""
    from bench.serving import bench_key
    from runtime.services import Services
    from runtime.settings import Settings

    services = Services.open(Settings(database_url=database_url))
    try:
        return bench_key(services, tenant)
    finally:
        services.close()


def signed_in_context(browser: Browser, url: str, key: str) -> Any:
    """A fresh context (no cache, no cookies) signed in through POST /dashboard/session."""
    context = browser.new_context(viewport=VIEWPORT)
    answer = context.request.post(
        f"{url}/dashboard/session",
        data=json.dumps({"api_key": key}),
        headers={"content-type": "application/json"},
    )
    if not answer.ok:
        raise SystemExit(f"sign-in refused: {answer.status} {answer.text()[:300]}")
    return context


def measure_once(browser: Browser, url: str, key: str, timeout_ms: float = 60_000) -> tuple[float, float]:
    """(first contentful paint ms, first page of tasks rendered ms) of one cold page load."""
    context = signed_in_context(browser, url, key)
    try:
        page = context.new_page()
        page.add_init_script(FIRST_ROWS)
        page.goto(f"{url}/dashboard/#/tasks")
        page.wait_for_function("() => window.__firstRows !== null", timeout=timeout_ms)
        page.wait_for_function(
            "() => performance.getEntriesByName('first-contentful-paint').length > 0", timeout=timeout_ms
        )
        paints = page.evaluate(PAINTS)
        rows = float(page.evaluate("() => window.__firstRows"))
        return float(paints["first-contentful-paint"]), rows
    finally:
        context.close()


def established(port: int) -> int:
    """TCP connections the server side of 127.0.0.1:`port` holds (`ss`)."""
    done = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    )
    return len([line for line in done.stdout.splitlines() if line.strip()])


def subscriptions(browser: Browser, served: Served, key: str) -> tuple[int, int, int]:
    """(WebSockets the page opened, the gateway's connections after keep-alive idled out,
    the same with no page open) for one open tasks page."""
    time.sleep(KEEP_ALIVE_IDLE_SECONDS)  # the measuring runs' connections idle out first
    idle = established(served.port)
    context = signed_in_context(browser, served.url, key)
    try:
        recorder = Recorder()
        page = recorder.attach(context.new_page())
        page.add_init_script(FIRST_ROWS)
        page.goto(f"{served.url}/dashboard/#/tasks")
        page.wait_for_function("() => window.__firstRows !== null", timeout=60_000)
        page.wait_for_timeout(KEEP_ALIVE_IDLE_SECONDS * 1000)
        return len(recorder.websockets), established(served.port), idle
    finally:
        context.close()


def _summary(values: list[float]) -> str:
    return f"{min(values):7.0f} {statistics.median(values):7.0f} {max(values):7.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="task counts, smallest first")
    parser.add_argument("--runs", type=int, default=7, help="cold page loads per size (≥ 5)")
    args = parser.parse_args(argv)
    if (missing := chromium_missing()) is not None:
        raise SystemExit(missing)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    targets = [ensure_filled(size) for size in sizes]
    tenant = TENANTS[0]
    with tempfile.TemporaryDirectory(prefix="grey-bench-dashboard-") as tmp, contextlib.ExitStack() as stack:
        servers: list[tuple[Served, str]] = []
        for target in targets:
            key = mint_key(target.url, tenant)
            env = {"GREY_DATABASE_URL": target.url, "GREY_APIS": "grey", "GREY_WORKER_THREADS": "0"}
            workdir = Path(tmp) / str(target.size)
            served = stack.enter_context(grey_serve(workdir, env))
            servers.append((served, key))
        browser = stack.enter_context(chromium())
        for served, key in servers:  # warm: the server's caches and statements, not the browser's
            measure_once(browser, served.url, key)
        paints: dict[int, list[float]] = {size: [] for size in sizes}
        rows: dict[int, list[float]] = {size: [] for size in sizes}
        for _ in range(args.runs):
            for size, (served, key) in zip(sizes, servers, strict=True):
                paint, first_rows = measure_once(browser, served.url, key)
                paints[size].append(paint)
                rows[size].append(first_rows)
        print(f"\ntasks page, {args.runs} cold loads per size (fresh context each), sizes taking turns;")
        print(f"tenant {tenant} sees a quarter of each store; 2 cores shared with other work\n")
        print(f"{'store':>12} {'figure':<28} {'min':>7} {'median':>7} {'max':>7}  (ms)")
        for size in sizes:
            print(f"{size:>12,} {'first contentful paint':<28} {_summary(paints[size])}")
            print(f"{size:>12,} {'first page of tasks shown':<28} {_summary(rows[size])}")
        small, large = sizes[0], sizes[-1]
        paint_ratio = statistics.median(paints[large]) / statistics.median(paints[small])
        rows_ratio = statistics.median(rows[large]) / statistics.median(rows[small])
        print(
            f"\nratio {large:,} / {small:,} of the medians: paint {paint_ratio:.2f}×, rows {rows_ratio:.2f}×"
        )
        served, key = servers[-1]
        sockets, held, idle = subscriptions(browser, served, key)
        print(
            f"one open tasks page: {sockets} WebSocket(s) opened by the page; the gateway holds "
            f"{held} connection(s) after keep-alive idled out ({idle} with no page)"
        )
        met = statistics.median(paints[large]) < 1000 and held - idle == 1 and sockets == 1
        verdict = "met" if met else "NOT met"
        print(f"median first paint < 1 s at {large:,} and one subscription per page: {verdict}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
