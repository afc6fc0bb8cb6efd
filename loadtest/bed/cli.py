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
    kill_worker_at: Annotated[
        float | None,
        typer.Option(
            "--kill-worker-at",
            min=0.0,
            help="SIGKILL a worker's node process this many seconds into each level (not the "
            "probe); its recovery is measured and the twin predicts it.",
        ),
    ] = None,
    kill_worker: Annotated[
        int, typer.Option("--kill-worker", min=1, help="Which worker --kill-worker-at kills (1 = first).")
    ] = 1,
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
    if kill_worker_at is not None and kill_worker_at >= seconds:
        _console.print(f"[red]error:[/red] --kill-worker-at: must be < --seconds ({seconds:g})")
        raise typer.Exit(2)
    options = BedOptions(
        protocol=protocol,
        seconds=seconds,
        users=users,
        seed=seed,
        probe=probe,
        broker_url=rabbitmq,
        kill_worker_at=kill_worker_at,
        kill_worker=kill_worker - 1,
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
    if kill_worker_at is not None:
        from simulator.fidelity import compare

        rows, predictions = compare(cfg, wl, results)
        print_kills(results)
        _out.print("the twin, uncalibrated (the workload file as given), told the same kill:")
        print_fidelity(rows)
        paths += plot_kills(results, predictions, out)
    _out.print("wrote " + ", ".join(str(p) for p in paths) + f", Locust reports {out}/*/report.html")


def print_kills(results: dict[str, Any]) -> None:
    """What each kill did, as measured."""
    table = Table("level", "worker", "killed at", "in flight", "restart", "heartbeat timeout")
    table.add_column("tasks lost")
    for level in results["levels"]:
        kill = level.get("kill")
        if not kill:
            continue
        restart = kill["restart_seconds"]
        table.add_row(
            level.get("level", ""),
            kill["worker"],
            f"{kill.get('at_seconds', 0):.1f}s" if "at_seconds" in kill else kill.get("error") or "-",
            f"{kill['figures']['in flight']:.0f}" if "figures" in kill else str(len(kill["in_flight"])),
            f"{restart:.2f}s" if restart is not None else "never",
            f"{kill['heartbeat_timeout']:g}s",
            str(kill.get("tasks_lost", "-")),
        )
    _out.print(table)


def plot_kills(results: dict[str, Any], predictions: dict[str, Any], out: Path) -> list[Path]:
    from loadtest.bed.plots import plot_recovery

    paths = []
    for level in results["levels"]:
        index = str(level["index"])
        if "figures" in (level.get("kill") or {}) and index in predictions:
            paths.append(
                plot_recovery(level["kill"], predictions[index], out / f"recovery-level-{index}.png")
            )
    return paths


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
        rate = "throughput" in row["figure"]

        def unit(value: float | None, rate: bool = rate) -> str:
            return "-" if value is None else f"{value:.1f}/s" if rate else _ms(value)

        bound = target(share, row["level"], row["figure"])
        error = row["error"]
        within = error is not None and abs(error) <= bound
        predicted = unit(row["predicted"])
        if "predicted_min" in row:  # the twin's runs' spread
            predicted += f" ({unit(row['predicted_min'])}-{unit(row['predicted_max'])})"
        table.add_row(
            row["level"],
            f"{share * 100:.0f}%" if share else "-",
            row["figure"],
            unit(row["measured"]),
            predicted,
            f"[{'green' if within else 'red'}]{error * 100:+.1f}%[/]" if error is not None else "-",
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
    from runtime.config import HeartbeatConfig, load_cluster_config
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
    # A kill is detected on the validated run's heartbeat, whatever the calibration run's was.
    heartbeat = HeartbeatConfig.model_validate(validation_run["cluster"].get("heartbeat", {}))
    rows, predictions = compare(
        cluster.model_copy(update={"heartbeat": heartbeat}),
        calibrated,
        validation_run,
        seed,
        replications,
        calibration.hold,
    )
    print_fidelity(rows)
    written = [
        *paths.values(),
        write_rows(rows, out / "fidelity.json"),
        *plot_kills(validation_run, predictions, out),
    ]
    if unkilled := [r for r in rows if not r["figure"].startswith("kill:")]:
        written.append(plot_fidelity(unkilled, out / "fidelity.png"))
    note = "validated on " + (f"{validate}" if validate is not None else f"{run} itself (in-sample)")
    _out.print(note + "; wrote " + ", ".join(str(p) for p in written), highlight=False)


def plan_verify(
    slo: Annotated[
        list[str],
        typer.Option("--slo", help="Objective the bed can measure, e.g. 'p95 wait <= 0.5s for normal'."),
    ],
    rate: Annotated[float, typer.Option("--rate", min=0.1, help="Offered load, tasks/s.")],
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration",
            help="A `grey calibrate` output directory: its cluster.yaml and workload.yaml are the "
            "twin the planner asks. Default: --cluster and --workload as given (uncalibrated).",
        ),
    ] = None,
    cluster: Annotated[
        Path,
        typer.Option(
            "--cluster",
            help="Cluster config (threads per node; nodes are planned); with "
            "--calibration, the calibrated one is used.",
        ),
    ] = Path("loadtest/bed/cluster.yaml"),
    workload: Annotated[
        Path, typer.Option("--workload", help="The workload the bed offers (the twin's format).")
    ] = Path("loadtest/bed/workload.yaml"),
    seconds: Annotated[float, typer.Option("--seconds", min=2.0, help="Seconds of arrivals per run.")] = 30.0,
    users: Annotated[int, typer.Option("--users", min=1, help="Locust users.")] = 32,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the arrivals and of the twin.")] = 1,
    replications: Annotated[int, typer.Option("--replications", min=2, help="Twin runs per candidate.")] = 5,
    out: Annotated[Path, typer.Option("--out", help="Directory for the runs and plan.json.")] = Path(
        "out/plan-verify"
    ),
) -> None:
    """Close the planning loop: the twin names the fewest nodes meeting the objectives at
    --rate; that cluster is started here and load-tested (it must meet them), then the one a
    node smaller (it must miss them). Exits 1 if either verdict is not the expected one."""
    from loadtest.bed.plan import verify_plan
    from loadtest.bed.run import BedOptions
    from simulator.slo import parse_slo

    try:
        slos = [parse_slo(text) for text in slo]
    except ValueError as exc:
        _console.print(f"[red]error:[/red] --slo: {exc}")
        raise typer.Exit(2) from None
    cfg, bed_workload = _load(cluster, workload)
    twin_workload = bed_workload
    if calibration is not None:  # the cluster calibrated on: same threads per node as measured
        cfg, twin_workload = _load(calibration / "cluster.yaml", calibration / "workload.yaml")
    options = BedOptions(seconds=seconds, users=users, seed=seed)

    def on_plan(found: dict[str, Any]) -> None:
        checks = [c for c in found["plan"]["answer"]["checks"] if c["pool"] == "cpu"]
        shown = ", ".join(f"{c['slo']}: {_ms(c['mean'])}" for c in checks)
        _out.print(
            f"plan: {found['nodes']} cpu nodes x {cfg.pool('cpu').threads_per_node} threads at "
            f"{rate:g}/s ({shown}); load-testing it and {found['nodes'] - 1} nodes",
            highlight=False,
        )

    try:
        found = verify_plan(
            cfg,
            twin_workload,
            bed_workload,
            slos,
            rate,
            options,
            out,
            replications=replications,
            seed=seed,
            on_plan=on_plan,
        )
    except (ValueError, RuntimeError) as exc:
        _console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    table = Table("nodes", "objective", "twin", "measured", "limit", "verdict", "expected")
    for trial in found["trials"]:
        for check in trial["checks"]:
            expected = trial["named"]
            table.add_row(
                f"{trial['nodes']}" + (" (planned)" if trial["named"] else ""),
                check["slo"],
                _ms(check["predicted"]),
                _ms(check["measured"]),
                _ms(check["limit"]),
                f"[{'green' if trial['met'] == expected else 'red'}]{'met' if check['met'] else 'missed'}[/]",
                "met" if expected else "missed (any objective)",
            )
    _out.print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "plan-verify.json").write_text(json.dumps(found, indent=1, default=str))
    verdict = "closed: the planned cluster met the objectives, one node fewer missed them"
    _out.print(
        (verdict if found["closed"] else "NOT closed: see the verdicts above")
        + f"; wrote {out}/plan-verify.json"
    )
    if not found["closed"]:
        raise typer.Exit(1)
