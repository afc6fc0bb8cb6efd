"""`grey loadtest` and `grey calibrate`: plain functions runtime/cli.py mounts on its Typer app.

Everything heavy (Locust, psutil, SQLAlchemy, numpy, matplotlib) is imported inside the
commands, so mounting them costs `grey serve` nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

_console = Console(stderr=True)
_out = Console()


def _load(cluster: Path, workload: Path) -> tuple[Any, Any]:
    from runtime.config import ConfigError, load_cluster_config
    from simulator.workload import load_workload

    try:
        return load_cluster_config(cluster), load_workload(workload)
    except ConfigError as exc:
        _console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.2f}s"


def print_run(results: dict[str, Any]) -> None:
    table = Table("level", "offered/s", "achieved/s", "submit p50/p95/p99", "errors", "priority")
    table.add_column("wait p50/p95/p99")
    table.add_column("e2e p50/p95/p99")
    table.add_column("CPU % (gateway, workers)")
    for level in results["levels"]:
        fig, submit = level["figures"], level["submit"]
        cpu = level["cpu_percent"]
        workers = sum(v for k, v in cpu.items() if k.startswith("worker"))
        first = True
        for priority, block in fig.get("by_priority", {}).items():
            w, e = block["wait"], block["e2e"]
            table.add_row(
                ("probe" if level.get("probe") else level.get("level", "")) if first else "",
                f"{level['offered_rate']:.1f}" if first else "",
                f"{fig['throughput']:.1f}" if first else "",
                f"{submit.get('p50_ms', 0):.0f}/{submit.get('p95_ms', 0):.0f}/{submit.get('p99_ms', 0):.0f}ms"
                if first
                else "",
                f"{submit.get('failures', 0)}+{fig.get('failed', 0)}" if first else "",
                priority,
                f"{_ms(w['p50'])}/{_ms(w['p95'])}/{_ms(w['p99'])}",
                f"{_ms(e['p50'])}/{_ms(e['p95'])}/{_ms(e['p99'])}",
                f"{cpu.get('gateway-1', 0):.0f}, {workers:.0f}" if first else "",
            )
            first = False
    _out.print(table)


def loadtest(
    cluster: Annotated[
        Path, typer.Option("--cluster", help="Cluster config: cpu nodes = worker processes.")
    ] = Path("loadtest/bed/cluster.yaml"),
    workload: Annotated[Path, typer.Option("--workload", help="Workload file (the twin's format).")] = Path(
        "loadtest/bed/workload.yaml"
    ),
    levels: Annotated[
        str, typer.Option("--levels", help="Offered loads: '5,10,20' tasks/s or '50%,85%,100%' of capacity.")
    ] = "50%,85%,100%",
    seconds: Annotated[
        float, typer.Option("--seconds", min=2.0, help="Seconds of arrivals per level.")
    ] = 30.0,
    protocol: Annotated[str, typer.Option("--protocol", help="rest or grpc.")] = "rest",
    users: Annotated[
        int, typer.Option("--users", min=1, help="Locust users (submits in flight at most).")
    ] = 32,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the drawn arrivals and service times.")] = 1,
    probe: Annotated[
        float, typer.Option("--probe", min=1.0, help="The capacity probe offers this x the nominal capacity.")
    ] = 1.5,
    rabbitmq: Annotated[
        str | None,
        typer.Option("--rabbitmq", help="amqp:// URL: use RabbitMQ instead of a redis-server of its own."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for the reports, JSON and plots.")] = Path(
        "out/loadtest"
    ),
) -> None:
    """Start a real cluster on this machine and drive it with Locust at a list of offered loads."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from loadtest.bed.plots import plot_run
    from loadtest.bed.run import BedOptions, parse_levels, run_bed

    if protocol not in ("rest", "grpc"):
        _console.print(f"[red]error:[/red] --protocol: expected rest or grpc, got {protocol!r}")
        raise typer.Exit(2)
    try:
        chosen = parse_levels(levels)
    except ValueError as exc:
        _console.print(f"[red]error:[/red] --{exc}")
        raise typer.Exit(2) from None
    cfg, wl = _load(cluster, workload)
    options = BedOptions(
        protocol=protocol, seconds=seconds, users=users, seed=seed, probe=probe, broker_url=rabbitmq
    )
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[what]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=_console, transient=False) as bar:

        def level_progress(name: str) -> Any:
            task_id = bar.add_task(name, total=1.0, what="starting")

            def hook(what: str, done: float, total: float) -> None:
                bar.update(
                    task_id, completed=done / total if total else 1.0, what=f"{what} {done:.0f}/{total:.0f}"
                )

            return hook

        try:
            results = run_bed(cluster, cfg, wl, chosen, options, out, level_progress)
        except (ValueError, RuntimeError) as exc:
            _console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None
    print_run(results)
    if "capacity" in results:
        _out.print(
            f"capacity measured {results['capacity']:.1f} tasks/s "
            f"(nominal: threads / mean service = {results['nominal_capacity']:.1f})"
        )
    paths = [out / "results.json", *plot_run(results, out)]
    _out.print("wrote " + ", ".join(str(p) for p in paths) + f", Locust reports {out}/*/report.html")


def _read_run(directory: Path) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    from loadtest.bed.records import figures, records_from_json

    path = directory / "results.json"
    try:
        run = json.loads(path.read_text())
        records = [json.loads((directory / level["records"]).read_text()) for level in run["levels"]]
        for level, rows in zip(run["levels"], records, strict=True):  # as this version measures
            level["figures"] = figures(records_from_json(rows))
    except (OSError, ValueError, KeyError) as exc:
        _console.print(
            f"[red]error:[/red] {directory}: not a `grey loadtest` output ({exc})", highlight=False
        )
        raise typer.Exit(2) from None
    return run, records


def print_fidelity(rows: list[dict[str, Any]]) -> None:
    from simulator.fidelity import target

    table = Table("level", "of capacity", "figure", "measured", "predicted", "error", "target")
    for row in rows:
        share = row["share_of_capacity"]
        unit = (lambda v: f"{v:.1f}/s") if row["figure"] == "throughput" else _ms
        bound = target(share, row["level"])
        within = abs(row["error"]) <= bound
        table.add_row(
            row["level"],
            f"{share * 100:.0f}%" if share else "-",
            row["figure"],
            unit(row["measured"]),
            unit(row["predicted"]),
            f"[{'green' if within else 'red'}]{row['error'] * 100:+.1f}%[/]",
            f"{bound * 100:.0f}%",
        )
    _out.print(table)


def calibrate(
    run: Annotated[
        Path, typer.Option("--run", help="A `grey loadtest` output directory to calibrate on.")
    ] = Path("out/loadtest"),
    validate: Annotated[
        Path | None,
        typer.Option(
            "--validate", help="Another load run (another --seed) to predict; default: --run itself."
        ),
    ] = None,
    replications: Annotated[int, typer.Option("--replications", min=1, help="Twin runs per level.")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="The twin's seed.")] = 7,
    out: Annotated[
        Path, typer.Option("--out", help="Directory for the calibrated files and the report.")
    ] = Path("out/calibration"),
) -> None:
    """Calibrate the twin on a load run (service times, worker and dispatch overheads), then
    predict a load run's levels with it and print the error per figure."""
    from loadtest.bed.plots import plot_fidelity
    from runtime.config import load_cluster_config
    from simulator.calibration import calibrate as measure
    from simulator.calibration import write_calibration
    from simulator.fidelity import compare, write_rows
    from simulator.workload import Workload, load_workload

    calibration_run, records = _read_run(run)
    try:
        calibration = measure(calibration_run, records)
    except ValueError as exc:
        _console.print(f"[red]error:[/red] {run}: {exc}", highlight=False)
        raise typer.Exit(2) from None
    workload = Workload.model_validate(calibration_run["workload"])
    paths = write_calibration(calibration_run, workload, calibration, out)
    report = calibration.report()
    _out.print(
        f"calibrated on {run} (measured {calibration.measured_at}): capacity "
        f"{calibration.capacity or 0:.1f} tasks/s on {calibration.threads} threads; worker hold overhead "
        f"{calibration.hold * 1000:.1f} ms/task, dispatch delay median {calibration.dispatch * 1000:.1f} ms, "
        f"gateway CPU {calibration.gateway_cpu_ms_per_task or 0:.1f} ms/task",
        highlight=False,
    )
    for name, mean in calibration.service_means.items():
        inside = report["worker_overhead_inside_stamps"][name]
        _out.print(
            f"  {name}: service {mean * 1000:.1f} ms (of which worker overhead {inside * 1000:.1f} ms)"
        )
    validation_run = _read_run(validate)[0] if validate is not None else calibration_run
    cluster = load_cluster_config(paths["cluster"])
    calibrated = load_workload(paths["workload"])
    rows = compare(cluster, calibrated, validation_run, seed, replications, calibration.hold)
    print_fidelity(rows)
    written = [
        *paths.values(),
        write_rows(rows, out / "fidelity.json"),
        plot_fidelity(rows, out / "fidelity.png"),
    ]
    note = "validated on " + (f"{validate}" if validate is not None else f"{run} itself (in-sample)")
    _out.print(note + "; wrote " + ", ".join(str(p) for p in written), highlight=False)
