"""Independent replications and their 95 % confidence intervals (Student t, leaf by leaf).

Each replication has its own random streams (same seed, different replication index), so the
replications are i.i.d. and the t interval over their per-run estimates is valid even for
quantiles, which no single run can give an honest interval for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from scipy import stats as sps

from runtime.config import ClusterConfig
from simulator.model import RunLength
from simulator.results import is_number
from simulator.twin import Twin
from simulator.workload import Workload

ProgressHook = Callable[[int, int, float], None]
"""(replication, arrivals so far in it, simulated time)"""


def run_replications(
    cluster: ClusterConfig,
    workload: Workload,
    length: RunLength,
    seed: int = 0,
    replications: int = 1,
    on_progress: ProgressHook | None = None,
) -> dict[str, Any]:
    """Run `replications` independent runs and aggregate them."""
    runs = []
    for rep in range(replications):
        hook = None
        if on_progress is not None:

            def hook(n: int, now: float, _rep: int = rep) -> None:
                on_progress(_rep, n, now)

        runs.append(Twin(cluster, workload, length, seed=seed, replication=rep, progress=hook).run())
        if on_progress is not None:
            on_progress(rep, runs[-1]["arrivals_total"], runs[-1]["window"]["run_end"])
    return aggregate(runs, seed=seed)


def t_halfwidth(values: list[float], confidence: float = 0.95) -> float:
    """Half-width of the Student-t confidence interval of the mean (NaN for fewer than 2)."""
    n = len(values)
    if n < 2:
        return math.nan
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * math.sqrt(var / n)


def _combine(trees: list[Any]) -> tuple[Any, Any]:
    first = trees[0]
    if isinstance(first, dict):
        mean: dict[str, Any] = {}
        ci: dict[str, Any] = {}
        for key in first:
            m, c = _combine([t[key] for t in trees])
            if m is not None:
                mean[key] = m
                ci[key] = c
        return mean, ci
    if isinstance(first, list | bool):
        return None, None
    if is_number(first) or (isinstance(first, float) and math.isnan(first)):
        vals = [float(v) for v in trees if is_number(v)]
        if not vals:
            return math.nan, math.nan
        return sum(vals) / len(vals), t_halfwidth(vals)
    return None, None


def aggregate(runs: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Mean and CI half-width of every number, plus the raw runs (without their series)."""
    mean, ci = _combine(runs)
    return {
        "seed": seed,
        "replications": len(runs),
        "mean": mean,
        "ci95": ci,
        "queue_length": runs[0]["queue_length"],
        "runs": [{k: v for k, v in r.items() if k != "queue_length"} for r in runs],
    }
