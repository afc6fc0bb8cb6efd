"""`grey simulate` and `grey plan`: plain functions that runtime/cli.py mounts on its Typer app.

numpy, simpy, scipy and matplotlib are imported inside the commands, so that mounting them
costs `grey serve` nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from runtime.config import ClusterConfig, ConfigError, load_cluster_config

if TYPE_CHECKING:
    from simulator.model import RunLength
    from simulator.replications import ProgressHook
    from simulator.workload import Workload

_console = Console(stderr=True)

ClusterOpt = Annotated[
    Path | None,
    typer.Option(
        "--cluster",
        help="Cluster config (YAML/JSON), the runtime's file. Default: the embedded one-node cluster.",
    ),
]
WorkloadOpt = Annotated[Path, typer.Option("--workload", help="Workload file (YAML/JSON).")]
TasksOpt = Annotated[int | None, typer.Option("--tasks", min=1, help="Arrivals to simulate.")]
UntilOpt = Annotated[
    float | None, typer.Option("--until", min=0.0, help="Simulated seconds instead of --tasks.")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Same seed, same results.")]
WarmupOpt = Annotated[
    float | None,
    typer.Option(
        "--warmup", min=0.0, help="Seconds left out of the statistics. Default: first 10% of the run."
    ),
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Directory for JSON and PNG output.")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar.")]


def _load(cluster: Path | None, workload: Path) -> tuple[ClusterConfig, Workload]:
    from simulator.workload import load_workload

    try:
        cfg = load_cluster_config(cluster) if cluster is not None else ClusterConfig.default()
        wl = load_workload(workload)
    except ConfigError as exc:
        _console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    return cfg, wl


def _length(tasks: int | None, until: float | None, warmup: float | None, default_tasks: int) -> RunLength:
    from simulator.model import RunLength

    if tasks is not None and until is not None:
        _console.print("[red]error:[/red] give --tasks or --until, not both")
        raise typer.Exit(2)
    if tasks is None and until is None:
        tasks = default_tasks
    return RunLength.default_warmup(tasks=tasks, until=until, warmup=warmup)


@contextmanager
def _progress(
    enabled: bool, length: RunLength, replications: int, label: str
) -> Iterator[tuple[ProgressHook | None, Progress | None]]:
    """A rich bar over replications x tasks (or x simulated seconds)."""
    if not enabled:
        yield None, None
        return
    per = float(length.tasks if length.tasks is not None else length.until or 1.0)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=_console, transient=True) as bar:
        task_id = bar.add_task(label, total=per * replications)

        def hook(rep: int, n: int, now: float) -> None:
            done = min(n if length.tasks is not None else now, per)
            bar.update(task_id, completed=rep * per + done)

        yield hook, bar


def simulate(
    workload: WorkloadOpt,
    cluster: ClusterOpt = None,
    tasks: TasksOpt = None,
    until: UntilOpt = None,
    seed: SeedOpt = 0,
    replications: Annotated[
        int, typer.Option("--replications", min=1, help="Independent runs; >= 2 gives 95% CIs.")
    ] = 1,
    warmup: WarmupOpt = None,
    out: OutOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the JSON results.")] = False,
    progress: ProgressOpt = True,
) -> None:
    """Run the SimPy twin of the cluster under a workload and report what it measured."""
    from simulator import report
    from simulator.replications import run_replications

    cfg, wl = _load(cluster, workload)
    length = _length(tasks, until, warmup, default_tasks=100_000)
    with _progress(progress, length, replications, "simulating") as (hook, _bar):
        agg = run_replications(cfg, wl, length, seed=seed, replications=replications, on_progress=hook)
    console = report.make_console()
    if json_out:
        console.print_json(json.dumps(report.clean_json(agg["mean"] | {"ci95": agg["ci95"]})))
    else:
        report.print_results(agg, console)
    if out is not None:
        paths = [report.write_json(agg, out / "results.json"), *report.plot_results(agg, out)]
        console.print("wrote " + ", ".join(str(p) for p in paths))


def plan(
    workload: WorkloadOpt,
    cluster: ClusterOpt = None,
    slo: Annotated[
        list[str] | None,
        typer.Option(
            "--slo",
            help="Objective, e.g. 'p99 e2e <= 2s for critical' or 'rejected <= 1%'. "
            "Repeatable; default: the workload file's `slo:` list.",
        ),
    ] = None,
    tasks: TasksOpt = None,
    until: UntilOpt = None,
    seed: SeedOpt = 0,
    replications: Annotated[
        int, typer.Option("--replications", min=2, help="Runs per candidate (for the CI).")
    ] = 5,
    warmup: WarmupOpt = None,
    max_nodes: Annotated[
        int, typer.Option("--max-nodes", min=1, help="Give up on a pool past this many nodes.")
    ] = 256,
    decide: Annotated[
        str,
        typer.Option("--decide", help="'upper': the CI's upper end must meet the limit; 'mean': the mean."),
    ] = "upper",
    out: OutOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Find the fewest nodes per pool that meet the SLOs (galloping + bisection search)."""
    from simulator import report
    from simulator.planner import Evaluation, plan_capacity
    from simulator.slo import parse_slo

    if decide not in ("upper", "mean"):
        _console.print(f"[red]error:[/red] --decide: expected 'upper' or 'mean', got {decide!r}")
        raise typer.Exit(2)
    cfg, wl = _load(cluster, workload)
    texts = slo or list(wl.slo)
    try:
        slos = [parse_slo(s) for s in texts]
    except ValueError as exc:
        _console.print(f"[red]error:[/red] --slo: {exc}")
        raise typer.Exit(2) from None
    if not slos:
        _console.print(f"[red]error:[/red] no objectives: give --slo or an `slo:` list in {workload}")
        raise typer.Exit(2)
    length = _length(tasks, until, warmup, default_tasks=50_000)
    console = report.make_console()

    with _progress(progress, length, replications, "candidate 1") as (hook, bar):

        def on_eval(ev: Evaluation) -> None:
            verdict = "meets" if ev.all_met else "misses"
            console.print(
                f"  candidate {len(seen) + 1} {ev.nodes}: {verdict} the objectives", highlight=False
            )
            seen.append(ev)
            if bar is not None:
                bar.reset(bar.task_ids[0], description=f"candidate {len(seen) + 1}")

        seen: list[Evaluation] = []
        result = plan_capacity(
            cfg,
            wl,
            slos,
            length,
            seed=seed,
            replications=replications,
            max_nodes=max_nodes,
            conservative=decide == "upper",
            on_eval=on_eval,
            on_progress=hook,
        )
    report.print_plan(result, console)
    if out is not None:
        paths = [
            report.write_json(result.to_dict(), out / "plan.json"),
            report.plot_sweep(result, out / "sweep.png"),
        ]
        console.print("wrote " + ", ".join(str(p) for p in paths))
    if not result.feasible:
        raise typer.Exit(1)
