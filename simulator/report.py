"""Show results: a rich table in the terminal, JSON on disk, PNG plots (matplotlib, Agg)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from rich.console import Console
from rich.table import Table

from runtime.config import POOLS, PRIORITIES

if TYPE_CHECKING:
    from simulator.planner import PlanResult


#: A larger Little's-law gap means the window did not see a steady state.
STEADY_GAP = 0.05


def make_console() -> Console:
    """The terminal's width on a terminal; wide enough for the tables in a pipe or file."""
    return Console() if sys.stdout.isatty() else Console(width=160)


def fmt_seconds(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x == 0:
        return "0"
    if abs(x) < 1e-3:
        return f"{x * 1e6:.0f}µs"
    if abs(x) < 1:
        return f"{x * 1e3:.1f}ms"
    if abs(x) < 600:
        return f"{x:.2f}s"
    return f"{x / 60:.1f}min"


def _pm(value: str, ci: float | None, unit_fmt: Any = None) -> str:
    """`value ±ci`, or just the value when there is no interval or it rounds to nothing."""
    if ci is None or (isinstance(ci, float) and math.isnan(ci)):
        return value
    shown = unit_fmt(ci) if unit_fmt else f"{ci:.3g}"
    if ci == 0 or shown.strip("0.µms%") == "":
        return value
    return f"{value} ±{shown}"


def _f2(x: float) -> str:
    return f"{x:.2f}"


def _lat(block: dict[str, Any], ci: dict[str, Any], metric: str, stat: str) -> str:
    return _pm(fmt_seconds(block[metric][stat]), ci[metric][stat], fmt_seconds)


def _pct(x: float, h: float | None = None) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "-"
    s = f"{100 * x:.2f}%"
    if h is not None and not math.isnan(h) and h > 0:
        s += f" ±{100 * h:.2f}"
    return s


def results_tables(agg: dict[str, Any]) -> list[Table]:
    """The terminal view of `run_replications` output."""
    mean, ci = agg["mean"], agg["ci95"]
    reps = agg["replications"]
    note = f"{reps} replication{'s' if reps > 1 else ''}" + (", ± = 95% CI" if reps > 1 else "")
    window = mean["window"]["length"]

    t1 = Table(title=f"By priority ({note}; measured window {fmt_seconds(window)})")
    for col in (
        "priority",
        "arrivals",
        "rejected",
        "429",
        "503",
        "409",
        "tasks/s",
        "wait p50",
        "wait p99",
        "e2e p50",
        "e2e p95",
        "e2e p99",
    ):
        t1.add_column(col, justify="right" if col != "priority" else "left")
    for name in (*PRIORITIES, "all"):
        b = mean["overall"] if name == "all" else mean["by_priority"][name]
        c = ci["overall"] if name == "all" else ci["by_priority"][name]
        if not b["arrivals"] and name != "all":
            continue
        t1.add_row(
            name,
            f"{b['arrivals']:.0f}",
            _pct(b["rejected_fraction"], c["rejected_fraction"]),
            f"{b['rejected_by_status'].get('429', 0):.0f}",
            f"{b['rejected_by_status'].get('503', 0):.0f}",
            f"{b['rejected_by_status'].get('409', 0):.0f}",
            _pm(_f2(b["throughput"]), c["throughput"], _f2),
            _lat(b, c, "wait", "p50"),
            _lat(b, c, "wait", "p99"),
            _lat(b, c, "e2e", "p50"),
            _lat(b, c, "e2e", "p95"),
            _lat(b, c, "e2e", "p99"),
        )

    t2 = Table(title="By pool")
    for col in (
        "pool",
        "nodes",
        "utilization",
        "availability",
        "mean queue",
        "tasks/s",
        "wait p99",
        "e2e p50",
        "e2e p95",
        "e2e p99",
        "retries",
        "re-queued",
    ):
        t2.add_column(col, justify="right" if col != "pool" else "left")
    for name in POOLS:
        b, c = mean["by_pool"][name], ci["by_pool"][name]
        if not b["nodes"] and not b["arrivals"]:
            continue
        t2.add_row(
            name,
            f"{b['nodes']:.0f}",
            _pct(b["utilization"], c["utilization"]),
            _pct(b["availability"]) if b["nodes"] else "-",
            _pm(_f2(b["mean_queue_length"]), c["mean_queue_length"], _f2),
            _pm(_f2(b["throughput"]), c["throughput"], _f2),
            _lat(b, c, "wait", "p99"),
            _lat(b, c, "e2e", "p50"),
            _lat(b, c, "e2e", "p95"),
            _lat(b, c, "e2e", "p99"),
            f"{b['retries']:.0f}",
            f"{b['requeued_node_failure']:.0f}",
        )
    return [t1, t2]


def print_results(agg: dict[str, Any], console: Console | None = None) -> None:
    console = console or make_console()
    for table in results_tables(agg):
        console.print(table)
    ll = agg["mean"]["littles_law"]
    worst = max(r["littles_law"]["rel_error"] for r in agg["runs"])
    o = agg["mean"]["overall"]
    console.print(
        f"Little's law: L = {ll['L']:.4g}, λW = {ll['lambda_W']:.4g} "
        f"(worst relative gap over runs {100 * worst:.2f}%).  "
        f"Completed {o['completed']:.0f}, failed {o['failed']:.0f}, "
        f"timed out {o['timed_out']:.0f}, "
        f"unfinished {o['unfinished']:.0f} (means per run)."
    )
    if worst > STEADY_GAP:
        console.print(
            f"[yellow]L and λW differ by more than {100 * STEADY_GAP:.0f}%: the system was not "
            "in steady state over the window (a pool is overloaded, or the run is too short "
            "for its bursts). The latency figures describe a transient, not a long-run "
            "level.[/yellow]"
        )


def clean_json(x: Any) -> Any:
    """NaN and infinities to None, tuples to lists: what strict JSON can hold."""
    if isinstance(x, dict):
        return {k: clean_json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [clean_json(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_json(data: dict[str, Any], path: Path) -> Path:
    """Strict JSON (NaN and infinities become null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean_json(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_results(agg: dict[str, Any], out_dir: Path) -> list[Path]:
    """queue_length.png, latency.png and utilization.png in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    mean, ci = agg["mean"], agg["ci95"]
    paths = []

    fig = _figure(8, 3.5)
    ax = fig.subplots()
    series = agg["queue_length"]
    for pool in POOLS:
        if mean["by_pool"][pool]["arrivals"]:
            ax.plot(series["t"], series[pool], label=pool, linewidth=0.8)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("tasks waiting")
    ax.set_title("Queue length over time (replication 1)")
    ax.legend()
    paths.append(out_dir / "queue_length.png")
    fig.savefig(paths[-1])

    fig = _figure(8, 3.5)
    axes = fig.subplots(1, 2, sharey=True)
    present = [p for p in PRIORITIES if mean["by_priority"][p]["completed"]]
    for ax, metric in zip(axes, ("wait", "e2e"), strict=True):
        width = 0.25
        for i, stat in enumerate(("p50", "p95", "p99")):
            xs = [j + (i - 1) * width for j in range(len(present))]
            ys = [mean["by_priority"][p][metric][stat] for p in present]
            es = [_nz(ci["by_priority"][p][metric][stat]) for p in present]
            ax.bar(xs, ys, width, yerr=es, capsize=2, label=stat)
        ax.set_xticks(range(len(present)), present)
        ax.set_title("queue wait" if metric == "wait" else "end-to-end latency")
        ax.set_yscale("symlog", linthresh=1e-3)
    axes[0].set_ylabel("seconds")
    axes[1].legend()
    paths.append(out_dir / "latency.png")
    fig.savefig(paths[-1])

    fig = _figure(5, 3)
    ax = fig.subplots()
    pools = [p for p in POOLS if mean["by_pool"][p]["nodes"]]
    ax.bar(
        pools,
        [100 * mean["by_pool"][p]["utilization"] for p in pools],
        yerr=[100 * _nz(ci["by_pool"][p]["utilization"]) for p in pools],
        capsize=3,
    )
    ax.set_ylim(0, 100)
    ax.set_ylabel("busy worker threads (%)")
    ax.set_title("Utilization per pool")
    paths.append(out_dir / "utilization.png")
    fig.savefig(paths[-1])
    return paths


def _nz(x: float) -> float:
    return 0.0 if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def plan_table(plan: PlanResult) -> Table:
    """One row per simulated candidate: nodes per pool and the worst objective ratio."""
    table = Table(title="Candidates simulated (figure / limit; <= 1 meets the objective)")
    table.add_column("#", justify="right")
    for pool in plan.active_pools:
        table.add_column(f"{pool} nodes", justify="right")
    slos = list(dict.fromkeys(c["slo"] for c in plan.answer.checks))
    for s in slos:
        table.add_column(s, justify="right")
    table.add_column("met")
    for i, ev in enumerate(plan.evaluations, start=1):
        cells = [str(i)] + [str(ev.nodes[p]) for p in plan.active_pools]
        for s in slos:
            ratios = [
                (c["mean"] + c["ci95"]) / c["limit"] if c["limit"] else math.inf
                for c in ev.checks
                if c["slo"] == s and c["pool"] in plan.active_pools and not math.isnan(c["mean"])
            ]
            cells.append(f"{max(ratios):.2f}" if ratios else "-")
        cells.append("yes" if all(ev.met[p] for p in plan.active_pools) else "no")
        table.add_row(*cells)
    return table


def print_plan(plan: PlanResult, console: Console | None = None) -> None:
    console = console or make_console()
    console.print(plan_table(plan))
    ans = plan.answer
    if plan.feasible:
        nodes = ", ".join(f"{p}: {plan.nodes[p]}" for p in plan.active_pools)
        console.print(
            f"[bold]Smallest cluster meeting every objective[/bold]: {nodes} "
            f"({sum(plan.nodes.values())} nodes, {len(plan.evaluations)} candidates "
            "simulated)"
        )
    else:
        console.print(
            f"[bold red]No cluster up to the node cap meets the objectives[/bold red] "
            f"in pool(s): {', '.join(plan.infeasible_pools)}"
        )
    table = Table(title="At the answer (mean ± 95% CI)")
    for col in ("objective", "pool", "figure", "limit", "met"):
        table.add_column(col)
    for c in ans.checks:
        if math.isnan(c["mean"]) or c["pool"] not in plan.active_pools:
            continue
        latency = "e2e" in c["slo"] or "wait" in c["slo"]
        f = fmt_seconds if latency else (lambda v: f"{100 * v:.2f}%")
        table.add_row(
            c["slo"], c["pool"], _pm(f(c["mean"]), c["ci95"], f), f(c["limit"]), "yes" if c["met"] else "no"
        )
    console.print(table)


_FLOOR = 1e-3


def plot_sweep(plan: PlanResult, path: Path) -> Path:
    """Per active pool: each objective's figure/limit against the nodes tried, with the CI."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pools = plan.active_pools or list(POOLS[:1])
    fig = _figure(4.5 * len(pools), 3.5)
    axes = fig.subplots(1, len(pools), squeeze=False)[0]
    slos = list(dict.fromkeys(c["slo"] for c in plan.answer.checks))
    for ax, pool in zip(axes, pools, strict=True):
        for i, s in enumerate(slos):
            pts = sorted(
                (ev.nodes[pool], c["mean"] / c["limit"], c["ci95"] / c["limit"])
                for ev in plan.evaluations
                for c in ev.checks
                if c["pool"] == pool and c["slo"] == s and not math.isnan(c["mean"]) and c["limit"]
            )
            if pts:
                xs = [p[0] for p in pts]
                # log scale: a zero (nothing rejected) sits on the floor, bars stop above it
                ys = [max(p[1], _FLOOR) for p in pts]
                lower = [min(p[2], 0.9 * y) for p, y in zip(pts, ys, strict=True)]
                upper = [p[2] for p in pts]
                ax.errorbar(
                    xs,
                    ys,
                    yerr=[lower, upper],
                    marker="o",
                    capsize=3,
                    label=s,
                    linestyle="none",
                    color=f"C{i}",
                )
        tried = [ev.nodes[pool] for ev in plan.evaluations]
        ax.set_xlim(min(tried) - 1, max(tried) + 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.axvline(plan.nodes[pool], color="green", linewidth=1.0, alpha=0.6)
        ax.set_yscale("log")
        ax.set_ylim(bottom=_FLOOR / 2)
        ax.set_xlabel(f"{pool} nodes")
        ax.set_ylabel("figure / limit")
        ax.set_title(f"{pool}: answer {plan.nodes[pool]} nodes")
    axes[0].legend(fontsize=7)
    fig.savefig(path)
    return path
