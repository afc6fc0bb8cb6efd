"""Fidelity: what the calibrated twin predicts for a load run's levels, against what was measured.

For each level the twin runs the calibrated workload at the level's offered load for the same
seconds of arrivals (first 10 % left out, as the load run leaves out its first 10 % of
submits), several replications averaged; the calibrated workload carries the measured service
times and dispatch delay (simulator/calibration.py). Throughput is the twin's
busy threads over its mean thread-holding time per task (utilization x threads / mean
service), i.e. the rate threads take tasks while arrivals last, which is what the load run
measures (starts inside the span of its submits).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.config import ClusterConfig
from simulator.heartbeats import Beats
from simulator.model import Outage, RunLength
from simulator.recovery import FIGURES as RECOVERY_FIGURES
from simulator.recovery import predict_recovery
from simulator.replications import run_replications
from simulator.scaling import at_rate, mean_service
from simulator.workload import Workload

FIGURES = (
    ("throughput", None, None),
    ("wait p50", "wait", "p50"),
    ("wait p95", "wait", "p95"),
    ("e2e p50", "e2e", "p50"),
    ("e2e p95", "e2e", "p95"),
)


def predict_level(
    cluster: ClusterConfig,
    workload: Workload,
    rate: float,
    seconds: float,
    seed: int,
    replications: int,
    hold: float = 0.0,
) -> dict[str, float]:
    """The twin's figures for `rate` tasks/s offered for `seconds`.

    `hold` is the calibrated thread time per task outside the store's stamps, part of every
    calibrated service sample: it keeps the thread after `completed_at` (acknowledging the
    message), so it is not part of the end-to-end time the store records and is taken off it."""
    scaled = at_rate(workload, rate)
    length = RunLength(until=seconds, warmup_time=0.1 * seconds)
    agg = run_replications(cluster, scaled, length, seed=seed, replications=replications)["mean"]
    pool = agg["by_pool"]["cpu"]
    service = mean_service(scaled)
    found = {"throughput": pool["utilization"] * pool["threads"] / service if service else 0.0}
    for name, metric, quantile in FIGURES[1:]:
        assert metric is not None and quantile is not None
        found[name] = agg["overall"][metric][quantile] - (hold if metric == "e2e" else 0.0)
        for priority, block in agg["by_priority"].items():
            if block["completed"]:
                found[f"{name} {priority}"] = block[metric][quantile] - (hold if metric == "e2e" else 0.0)
    return found


def measured_level(figures: dict[str, Any]) -> dict[str, float]:
    found = {"throughput": float(figures["throughput"])}
    for name, metric, quantile in FIGURES[1:]:
        assert metric is not None and quantile is not None
        found[name] = float(figures["overall"][metric][quantile])
        for priority, block in figures.get("by_priority", {}).items():
            if block[metric]["count"]:
                found[f"{name} {priority}"] = float(block[metric][quantile])
    return found


def relative_error(predicted: float, measured: float) -> float:
    return (predicted - measured) / measured if measured else (0.0 if predicted == 0 else float("inf"))


def compare(
    cluster: ClusterConfig,
    workload: Workload,
    run: dict[str, Any],
    seed: int = 7,
    replications: int = 10,
    hold: float = 0.0,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """A row per (level, figure) of `run`: measured, predicted, relative error; and the twin's
    prediction of each level with a worker killed (its completion series, to plot), by index.

    A plain level's figures: throughput, waits and end-to-end times overall, then per priority
    (critical's against normal's). A level with a worker killed: the recovery figures
    (`kill: ...`, simulator/recovery.py), the twin told the same event: that node down as it
    starts a task at the same second, back after the restart time measured, and the heartbeat
    phases the bed read at the kill (simulator/heartbeats.py) when it recorded them."""
    rows: list[dict[str, Any]] = []
    predictions: dict[str, dict[str, Any]] = {}
    capacity = run.get("capacity")
    seconds = float(run["options"]["seconds"])
    for level in run["levels"]:
        kill = level.get("kill")
        if level.get("probe") or (kill and "figures" not in kill):
            continue  # the probe is calibration's; a kill that did not happen has nothing to compare
        # The load the cluster was offered: the submits Locust made (a starved load generator
        # falls behind its schedule), not the schedule's rate.
        rate = float(level["figures"].get("offered") or level["offered_rate"])
        spread: dict[str, tuple[float | None, float | None]] = {}
        if kill:
            outage = _outage(run, kill, seconds)
            found = predict_recovery(cluster, workload, rate, seconds, outage, seed, replications, hold)
            predictions[str(level["index"])] = found
            measured = {f"kill: {name}": kill["figures"][name] for name in RECOVERY_FIGURES}
            predicted = {f"kill: {name}": found["mean"][name] for name in RECOVERY_FIGURES}
            spread = {f"kill: {name}": (found["min"][name], found["max"][name]) for name in RECOVERY_FIGURES}
            names = list(measured)
        else:
            predicted = predict_level(cluster, workload, rate, seconds, seed, replications, hold)
            measured = measured_level(level["figures"])
            names = [name for name, *_ in FIGURES]
            names += [name for name in measured if name not in names and name in predicted]
        for name in names:
            known = measured[name] is not None and predicted[name] is not None
            row = {
                "level": level.get("level", f"{rate:g}/s"),
                "offered_rate": rate,
                "scheduled_rate": float(level["offered_rate"]),
                "share_of_capacity": rate / capacity if capacity else None,
                "figure": name,
                "measured": measured[name],
                "predicted": predicted[name],
                "error": relative_error(predicted[name], measured[name]) if known else None,
            }
            if name in spread:
                row["predicted_min"], row["predicted_max"] = spread[name]
            rows.append(row)
    return rows, predictions


def _outage(run: dict[str, Any], kill: dict[str, Any], seconds: float) -> Outage:
    """The bed's kill (loadtest/bed/kill.py) as the twin's scheduled failure."""
    down_for = kill["restart_seconds"] if kill["restart_seconds"] is not None else 10 * seconds
    worker = int(run["options"].get("kill_worker", 0))
    beats = kill.get("heartbeats") or []
    killed = [b["ago"] for b in beats if b["killed"]]
    peers = [b["ago"] for b in beats if not b["killed"]]
    measured = Beats(killed[0], peers, kill.get("beat_period")) if killed else None
    return Outage("cpu", worker, kill["after_seconds"], down_for, kill.get("on_start_within", 0.0), measured)


KILL_TARGET = 0.25
"""The bound on a recovery figure. The twin notices the dead node as the runtime does (at a
peer's reaper tick after the node's last beat is `timeout` old, simulator/heartbeats.py), on
the phases the bed read at the kill; without them (phases drawn) the detection can land
anywhere from one heartbeat interval before the timeout to one after it in a single run."""


def target(share: float | None, level: str = "", figure: str = "") -> float:
    """The issue's bound: 10 % up to 85 % of capacity, 20 % at saturation. A level asked for as
    a share of capacity ('85%') is judged by that share, not by the one Poisson noise gave it.
    Recovery figures of a killed worker: `KILL_TARGET`."""
    if figure.startswith("kill:"):
        return KILL_TARGET
    if level.endswith("%"):
        share = float(level.rstrip("%")) / 100
    return 0.2 if share is None or share > 0.9 else 0.1


def write_rows(rows: list[dict[str, Any]], path: Path) -> Path:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1))
    return path
