"""`make bench-gateway`: the gateway against bare Starlette and bare grpclib, same run.

REST: wrk (1 thread, 32 connections) on `GET /v1/cluster/health` and `POST /v1/tasks`
(full validation and auth) against the Grey gateway and a bare Starlette app doing the same
work. gRPC: `SubmitTask` from a grpcio load process against the generated grpclib service
and a bare grpclib handler. Each server gets its own fresh SQLite store. Targets: REST
≥ 0.5×, gRPC ≥ 0.7× of bare. Each pair is measured `BENCH_RUNS` times (default 3; bare and
Grey back to back in every run); the table prints min / median / max of each ratio and a
target counts as met only when the worst run meets it. Writes out/bench/gateway.png.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench.repeat import Spread, runs_from_env
from bench.serving import free_port, wait_listening

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
WARMUP = 2.0
CONNECTIONS = 32
console = Console()

SUBMIT_LUA = """
wrk.method = "POST"
wrk.body = '{"type": "stateless", "payload": {"function": "echo", "data": {"n": 1}}, '
    .. '"priority": "normal", "labels": {"env": "bench"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer KEY"
"""
HEALTH_LUA = """
wrk.headers["Authorization"] = "Bearer KEY"
"""


@dataclass(frozen=True)
class Result:
    """One operation over every run: requests/s of each side and their ratio per run."""

    name: str
    grey: Spread
    bare: Spread
    ratio: Spread
    target: float

    @property
    def met(self) -> bool:
        return self.ratio.minimum >= self.target


class ServerProcess:
    def __init__(self, kind: str, workdir: Path) -> None:
        self.port = free_port()
        folder = Path(tempfile.mkdtemp(dir=workdir))
        key_file = folder / "key"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.gateway_servers",
                kind,
                str(self.port),
                f"sqlite:///{folder / 'grey.db'}",
                str(key_file),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        assert self.process.stdout is not None
        seen = []
        for line in self.process.stdout:
            seen.append(line)
            if line.strip() == "ready":
                break
        else:
            raise SystemExit(f"{kind} did not start:\n{''.join(seen)}")
        self.key = key_file.read_text()
        wait_listening(self.port)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _wrk(url: str, script: str, seconds: float) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    output = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "-s", handle.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if match is None or non_2xx:
        raise SystemExit(f"wrk failed or saw errors:\n{output}")
    return float(match.group(1))


def _rest(kind: str, path: str, lua: str, workdir: Path) -> float:
    server = ServerProcess(kind, workdir)
    try:
        script = lua.replace("KEY", server.key)
        _wrk(f"http://127.0.0.1:{server.port}{path}", script, WARMUP)
        return _wrk(f"http://127.0.0.1:{server.port}{path}", script, SECONDS)
    finally:
        server.stop()


def _grpc(kind: str, workdir: Path) -> float:
    server = ServerProcess(kind, workdir)
    try:
        run = [sys.executable, "-m", "bench.grpc_load", str(server.port), server.key]
        subprocess.run([*run, str(WARMUP), str(CONNECTIONS)], check=True, capture_output=True)
        output = subprocess.run(
            [*run, str(SECONDS), str(CONNECTIONS)], check=True, capture_output=True, text=True
        ).stdout.split()
        if output[1] != "0":
            raise SystemExit(f"{kind}: {output[1]} failed calls")
        return float(output[0])
    finally:
        server.stop()


def _plot(results: list[Result], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4))
    names = [r.name for r in results]
    positions = range(len(results))
    axis.bar([p - 0.2 for p in positions], [r.bare.median for r in results], 0.4, label="bare (median)")
    axis.bar([p + 0.2 for p in positions], [r.grey.median for r in results], 0.4, label="Grey (median)")
    for p, r in zip(positions, results, strict=True):
        axis.text(p + 0.2, r.grey.median, r.ratio.format(suffix="×"), ha="center", va="bottom", fontsize=8)
    axis.set_xticks(list(positions), names)
    axis.set_ylabel("requests per second")
    axis.set_title("Gateway against bare frameworks (ratio: min / median / max over runs)")
    axis.legend()
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=120)


def main() -> int:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (make bench-gateway does this)")
    workdir = Path(tempfile.mkdtemp(prefix="grey-bench-"))
    plan = [
        (
            "GET /v1/cluster/health",
            lambda k: _rest(k, "/v1/cluster/health", HEALTH_LUA, workdir),
            "rest",
            0.5,
        ),
        ("POST /v1/tasks", lambda k: _rest(k, "/v1/tasks", SUBMIT_LUA, workdir), "rest", 0.5),
        ("gRPC SubmitTask", lambda k: _grpc(k, workdir), "grpc", 0.7),
    ]
    runs = runs_from_env(3)
    measured: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name, *_ in plan}
    with Progress(console=console, transient=True) as progress:
        step = progress.add_task("benchmarking", total=runs * len(plan) * 2)
        for run in range(1, runs + 1):
            for name, measure, transport, _target in plan:
                bare, grey = measured[name]
                progress.update(step, description=f"run {run}/{runs} · {name}: bare")
                bare.append(measure(f"bare-{transport}"))
                progress.advance(step)
                progress.update(step, description=f"run {run}/{runs} · {name}: Grey")
                grey.append(measure(f"grey-{transport}"))
                progress.advance(step)
    results = [
        Result(
            name,
            Spread.of(measured[name][1]),
            Spread.of(measured[name][0]),
            Spread.of(
                [g / b if b else 0.0 for g, b in zip(measured[name][1], measured[name][0], strict=True)]
            ),
            target,
        )
        for name, _measure, _transport, target in plan
    ]
    table = Table(
        title=f"Gateway vs bare ({SECONDS:.0f} s each, {CONNECTIONS} conns, {runs} runs; min / median / max)"
    )
    for column in ("operation", "bare req/s", "Grey req/s", "ratio", "target", "met (worst run)"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r.name,
            r.bare.format("{:,.0f}"),
            r.grey.format("{:,.0f}"),
            r.ratio.format(suffix="×"),
            f"≥ {r.target}×",
            "yes" if r.met else "NO",
        )
    console.print(table)
    _plot(results, Path("out/bench/gateway.png"))
    console.print("plot: out/bench/gateway.png")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all(r.met for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
