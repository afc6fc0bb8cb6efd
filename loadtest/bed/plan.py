"""The planner's answer checked on real processes (`grey plan-verify`).

The twin (calibrated, or the workload file as given) names the fewest cpu nodes meeting the
objectives at an offered load (simulator/planner.py); the bed then starts that cluster on this
machine, offers it that load, and judges the objectives on what the store recorded; and the
same with one node fewer, which must miss them. On a 2-core machine the tasks are the built-in
`sleep` task, so capacity is set by worker threads (concurrency), not by CPU, and the clusters
the planner names fit on the machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from loadtest.bed.run import BedOptions, Level, Progress, run_bed
from runtime.config import PRIORITIES, ClusterConfig
from simulator.model import RunLength
from simulator.planner import Evaluation, plan_capacity
from simulator.replications import run_replications
from simulator.scaling import at_rate
from simulator.slo import SLO, judge
from simulator.workload import Workload


def measured_value(slo: SLO, figures: dict[str, Any]) -> float:
    """The objective's figure from a load level's measured figures (NaN: no such traffic)."""
    if slo.metric not in ("e2e", "wait") or slo.stat == "max":
        raise ValueError(
            f"{slo.text!r}: the bed measures p50/p95/p99/mean of e2e and wait; give such an objective"
        )
    if slo.scope in PRIORITIES:
        block = figures.get("by_priority", {}).get(slo.scope)
        if block is None:
            return math.nan
    else:
        block = figures["overall"]
    return float(block[slo.metric][slo.stat])


def _cluster_file(cluster: ClusterConfig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cluster.model_dump(mode="json"), sort_keys=False))
    return path


def verify_plan(
    cluster: ClusterConfig,
    twin_workload: Workload,
    bed_workload: Workload,
    slos: list[SLO],
    rate: float,
    options: BedOptions,
    out: Path,
    *,
    twin_seconds: float = 120.0,
    replications: int = 5,
    seed: int = 0,
    progress: Callable[[str], Progress] | None = None,
    on_plan: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Plan at `rate` tasks/s, then load-test the named cluster and the one a node smaller.

    Returns the plan and, per node count tried, the twin's figures (mean of `replications`
    runs of `twin_seconds`) and the measured ones with each objective's verdict."""
    scaled = at_rate(twin_workload, rate)
    length = RunLength(until=twin_seconds, warmup_time=0.1 * twin_seconds)
    plan = plan_capacity(cluster, scaled, slos, length, seed=seed, replications=replications)
    if not plan.feasible:
        raise ValueError(f"the planner found no cluster meeting the objectives: {plan.infeasible_pools}")
    nodes = plan.nodes["cpu"]
    found: dict[str, Any] = {"rate": rate, "nodes": nodes, "plan": plan.to_dict(), "trials": []}
    if on_plan is not None:
        on_plan(found)
    evaluated = {e.nodes["cpu"]: e for e in plan.evaluations}
    for count in [nodes, nodes - 1] if nodes > 1 else [nodes]:
        sized = cluster.with_nodes({"cpu": count})
        twin = evaluated.get(count) or _evaluate(sized, scaled, slos, length, seed, replications)
        cluster_file = _cluster_file(sized, out / f"nodes-{count}" / "cluster.yaml")
        run = run_bed(
            cluster_file, sized, bed_workload, [Level(rate)], options, out / f"nodes-{count}", progress
        )
        level = run["levels"][0]
        checks = []
        cpu_checks = [c for c in twin.checks if c["pool"] == "cpu"]  # the bed has the cpu pool only
        for slo, predicted in zip(slos, cpu_checks, strict=True):
            value = measured_value(slo, level["figures"])
            checks.append(
                {
                    "slo": slo.text,
                    "limit": slo.limit,
                    "predicted": predicted["mean"],
                    "predicted_met": predicted["met"],
                    "measured": value,
                    "met": math.isnan(value) or value <= slo.limit,
                }
            )
        found["trials"].append(
            {
                "nodes": count,
                "named": count == nodes,
                "met": all(c["met"] for c in checks),
                "checks": checks,
                "throughput": level["figures"]["throughput"],
                "offered": level["figures"].get("offered"),
                "failed": level["figures"].get("failed", 0),
                "submit_failures": level["submit"].get("failures", 0),
                "run": str(out / f"nodes-{count}"),
            }
        )
    trials = found["trials"]
    found["closed"] = trials[0]["met"] and (len(trials) < 2 or not trials[1]["met"])
    return found


def _evaluate(
    cluster: ClusterConfig, workload: Workload, slos: list[SLO], length: RunLength, seed: int, reps: int
) -> Evaluation:
    """The twin's verdicts for a cluster the planner's search did not try."""
    agg = run_replications(cluster, workload, length, seed=seed, replications=reps)
    checks = judge(slos, agg["mean"], agg["ci95"], "cpu")
    return Evaluation(
        {"cpu": cluster.pool("cpu").nodes},
        checks,
        {"cpu": all(c["met"] for c in checks)},
        agg["mean"],
        agg["ci95"],
    )
