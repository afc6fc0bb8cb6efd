"""`make bench-sim`: how fast is the twin, and does its memory stay flat?

1. The same M/M/c run (c = 8, rho = 0.8, N tasks, same seed family) through the twin and
   through a bare SimPy loop written here (a `simpy.Resource`, one process per customer: the
   textbook model).  Both simulate the same arrivals and departures, so model events per
   second (2 per task) compare like with like; the ratio's target is >= 0.5.  SimPy kernel
   events are printed too: the twin needs fewer per task, which is where its speed comes from.
2. 1,000,000 tasks of the example workload on the example 3-pool cluster (6 CPU nodes so it is
   stable; node failures on): wall time and peak RSS, after 100,000 tasks and after 1,000,000.

Run: python -m bench.sim [--tasks N] [--big N] [--repeat R] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

import simpy
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from runtime.config import ClusterConfig, PoolConfig, load_cluster_config
from simulator import theory
from simulator.model import RunLength
from simulator.twin import Twin
from simulator.workload import Workload, load_workload

ROOT = Path(__file__).resolve().parents[1]
C, RHO, MU = 8, 0.8, 1.0
LAM = RHO * C * MU


def bare_mmc(n: int, seed: int) -> dict[str, float]:
    """The textbook SimPy M/M/c: a Resource with c slots and a process per customer."""
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=C)
    rng = random.Random(seed)
    done = env.event()
    state = {"served": 0, "wait": 0.0}

    def customer() -> Any:
        arrived = env.now
        with server.request() as req:
            yield req
            state["wait"] += env.now - arrived
            yield env.timeout(rng.expovariate(MU))
        state["served"] += 1
        if state["served"] == n:
            done.succeed()

    def source() -> Any:
        for _ in range(n):
            yield env.timeout(rng.expovariate(LAM))
            env.process(customer())

    env.process(source())
    t0 = time.perf_counter()
    env.run(until=done)
    wall = time.perf_counter() - t0
    kernel = next(env._eid)  # SimPy's event counter (private; read once, at the end)
    return {"wall": wall, "tasks": n, "kernel_events": kernel, "mean_wait": state["wait"] / n}


def twin_mmc(n: int, seed: int) -> dict[str, float]:
    """The same system through the twin, everything on (gateway, priorities, statistics)."""
    cfg = ClusterConfig(pools={"cpu": PoolConfig(nodes=1, threads_per_node=C)})
    wl = Workload.model_validate(
        {
            "functions": {"f": {"service": {"dist": "exponential", "mean": 1 / MU}}},
            "streams": [{"arrivals": {"process": "poisson", "rate": LAM}, "mix": [{"function": "f"}]}],
        }
    )
    twin = Twin(cfg, wl, RunLength(tasks=n), seed=seed)
    t0 = time.perf_counter()
    res = twin.run()
    wall = time.perf_counter() - t0
    tasks = res["arrivals_total"]
    kernel = next(twin.env._eid)
    return {
        "wall": wall,
        "tasks": tasks,
        "kernel_events": kernel,
        "mean_wait": res["overall"]["wait"]["mean"],
    }


def rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def big_run(tasks: int, progress: Progress) -> dict[str, float]:
    cfg = load_cluster_config(ROOT / "examples" / "cluster.yaml").with_nodes({"cpu": 6})
    wl = load_workload(ROOT / "examples" / "workload.yaml")
    bar = progress.add_task(f"{tasks:,} tasks, 3 pools", total=tasks)

    def hook(n: int, _now: float) -> None:
        progress.update(bar, completed=min(n, tasks))

    twin = Twin(cfg, wl, RunLength(tasks=tasks, warmup_tasks=tasks // 10), seed=1, progress=hook)
    t0 = time.perf_counter()
    res = twin.run()
    wall = time.perf_counter() - t0
    progress.update(bar, completed=tasks)
    return {
        "tasks": res["arrivals_total"],
        "wall": wall,
        "peak_rss_mb": rss_mb(),
        "kernel_events": next(twin.env._eid),
        "sim_seconds": res["window"]["run_end"],
        "littles_rel_error": res["littles_law"]["rel_error"],
    }


def plot(mmc: dict[str, Any], big: list[dict[str, float]], path: Path) -> None:
    fig = Figure(figsize=(9, 3.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    names = ["bare SimPy", "Grey twin"]
    rates = [mmc["bare"]["tasks"] / mmc["bare"]["wall"], mmc["twin"]["tasks"] / mmc["twin"]["wall"]]
    left.bar(names, [2 * r / 1000 for r in rates], color=["grey", "tab:blue"])
    left.set_ylabel("model events / s (thousands)")
    left.set_title(f"M/M/{C}, rho={RHO}: ratio {mmc['ratio']:.2f}x")
    right.plot([b["tasks"] for b in big], [b["peak_rss_mb"] for b in big], marker="o")
    right.set_xscale("log")
    right.set_ylim(0, max(b["peak_rss_mb"] for b in big) * 1.3)
    right.set_xlabel("simulated tasks (3-pool example cluster)")
    right.set_ylabel("peak RSS (MB)")
    right.set_title("Memory is flat in the number of tasks")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=200_000, help="tasks per M/M/c run")
    ap.add_argument("--repeat", type=int, default=3, help="M/M/c runs each; the best counts")
    ap.add_argument("--big", type=int, default=1_000_000, help="tasks of the 3-pool run")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench-sim")
    args = ap.parse_args()
    console = Console() if sys.stdout.isatty() else Console(width=140)

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    big: list[dict[str, float]] = []
    base_rss = rss_mb()
    with Progress(*columns, console=console) as progress:
        # Memory first, while the process's peak RSS is still the model's own.
        for n in (args.big // 10, args.big):
            big.append(big_run(n, progress))
        runs: dict[str, list[dict[str, float]]] = {"bare": [], "twin": []}
        bar = progress.add_task(f"M/M/{C} x {args.tasks:,} tasks", total=2 * args.repeat)
        for r in range(args.repeat):  # interleaved, so a busy neighbour hurts both alike
            runs["bare"].append(bare_mmc(args.tasks, seed=r))
            progress.advance(bar)
            runs["twin"].append(twin_mmc(args.tasks, seed=r))
            progress.advance(bar)

    best = {k: min(v, key=lambda x: x["wall"]) for k, v in runs.items()}
    rate = {k: b["tasks"] / b["wall"] for k, b in best.items()}
    ratio = rate["twin"] / rate["bare"]
    mmc: dict[str, Any] = {
        "bare": best["bare"],
        "twin": best["twin"],
        "ratio": ratio,
        "erlang_c_mean_wait": theory.mmc_mean_wait(C, LAM, MU),
    }

    table = Table(title=f"M/M/{C}, rho = {RHO}, {args.tasks:,} tasks (best of {args.repeat})")
    for col in (
        "model",
        "wall s",
        "tasks/s",
        "model events/s",
        "kernel events/task",
        "kernel events/s",
        "mean wait (Erlang C {:.3f})".format(mmc["erlang_c_mean_wait"]),
    ):
        table.add_column(col, justify="right")
    for name, b in (("bare SimPy", best["bare"]), ("Grey twin", best["twin"])):
        table.add_row(
            name,
            f"{b['wall']:.2f}",
            f"{b['tasks'] / b['wall']:,.0f}",
            f"{2 * b['tasks'] / b['wall']:,.0f}",
            f"{b['kernel_events'] / b['tasks']:.1f}",
            f"{b['kernel_events'] / b['wall']:,.0f}",
            f"{b['mean_wait']:.3f}",
        )
    console.print(table)
    verdict = "meets" if ratio >= 0.5 else "MISSES"
    console.print(
        f"twin / bare SimPy, model events per second: [bold]{ratio:.2f}x[/bold] "
        f"({verdict} the >= 0.5x target)"
    )

    t2 = Table(title="Example workload on the 3-pool example cluster (cpu: 6 nodes)")
    for col in ("tasks", "simulated time", "wall s", "tasks/s", "peak RSS MB", "Little's law gap"):
        t2.add_column(col, justify="right")
    for b in big:
        t2.add_row(
            f"{b['tasks']:,}",
            f"{b['sim_seconds'] / 3600:.1f} h",
            f"{b['wall']:.1f}",
            f"{b['tasks'] / b['wall']:,.0f}",
            f"{b['peak_rss_mb']:.0f}",
            f"{100 * b['littles_rel_error']:.2f}%",
        )
    console.print(t2)
    console.print(f"peak RSS before any run: {base_rss:.0f} MB")

    png = args.out / "sim.png"
    plot(mmc, big, png)
    (args.out / "sim.json").write_text(
        json.dumps({"mmc": mmc, "big": big, "base_rss_mb": base_rss}, indent=2)
    )
    console.print(f"wrote {png} and {args.out / 'sim.json'}")


if __name__ == "__main__":
    main()
