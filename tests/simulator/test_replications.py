"""Seeds make runs reproducible, replications give t intervals, warm-up is left out."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from simulator.model import RunLength
from simulator.replications import run_replications, t_halfwidth
from simulator.twin import Twin
from tests.simulator.builders import cluster, exp_fn, poisson, workload

WL = workload(
    {"f": exp_fn(1.0)},
    poisson(0.6, {"function": "f", "priority": "high"}, {"function": "f", "priority": "low", "weight": 2}),
)


def test_same_seed_gives_identical_results_and_another_seed_does_not() -> None:
    length = RunLength(tasks=3000, warmup_tasks=300)
    a = run_replications(cluster(), WL, length, seed=7, replications=2)
    b = run_replications(cluster(), WL, length, seed=7, replications=2)
    c = run_replications(cluster(), WL, length, seed=8, replications=2)
    assert a == b
    assert a["mean"]["overall"]["e2e"]["mean"] != c["mean"]["overall"]["e2e"]["mean"]


def test_replications_are_independent_runs() -> None:
    agg = run_replications(cluster(), WL, RunLength(tasks=2000), seed=1, replications=3)
    means = [r["overall"]["e2e"]["mean"] for r in agg["runs"]]
    assert len(set(means)) == 3
    assert agg["mean"]["overall"]["e2e"]["mean"] == pytest.approx(sum(means) / 3)
    assert agg["ci95"]["overall"]["e2e"]["mean"] == pytest.approx(t_halfwidth(means))


def test_t_halfwidth_is_the_student_t_interval() -> None:
    xs = [1.0, 2.5, 2.0, 4.0, 3.1]
    lo, hi = sps.t.interval(0.95, len(xs) - 1, loc=sum(xs) / len(xs), scale=sps.sem(xs))
    assert t_halfwidth(xs) == pytest.approx((hi - lo) / 2)
    assert math.isnan(t_halfwidth([1.0]))


def test_warmup_by_count_leaves_out_the_first_tasks() -> None:
    res = Twin(cluster(), WL, RunLength(tasks=5000, warmup_tasks=1000), seed=3).run()
    assert res["overall"]["arrivals"] == 4000
    assert res["arrivals_total"] >= 5000
    assert res["window"]["start"] > 0


def test_warmup_by_time_starts_the_window_after_that_time() -> None:
    res = Twin(cluster(), WL, RunLength(until=3000, warmup_time=500), seed=3).run()
    w = res["window"]
    assert 500 <= w["start"] < 510 and w["end"] == pytest.approx(3000)
    assert res["overall"]["arrivals"] == pytest.approx(0.6 * 2500, rel=0.1)


def test_default_warmup_is_a_tenth_of_the_run() -> None:
    assert RunLength.default_warmup(tasks=1000).warmup_tasks == 100
    assert RunLength.default_warmup(until=50.0).warmup_time == 5.0
    assert RunLength.default_warmup(tasks=10, warmup=3.0).warmup_time == 3.0
    with pytest.raises(ValueError):
        RunLength(tasks=10, until=5.0)


def test_runs_with_node_failures_are_reproducible_too() -> None:
    """Re-queue order after a node failure must not depend on object addresses."""
    cfg = cluster(
        pools={
            "cpu": {"nodes": 3, "threads_per_node": 4, "failures": {"mtbf_seconds": 200, "mttr_seconds": 50}}
        }
    )
    wl = workload(
        {"f": exp_fn(2.0)},
        poisson(3.0, {"function": "f", "priority": "high"}, {"function": "f", "priority": "low"}),
    )
    runs = [Twin(cfg, wl, RunLength(tasks=20_000), seed=2).run() for _ in range(3)]
    assert runs[0]["overall"]["requeued_node_failure"] > 100
    assert runs[0] == runs[1] == runs[2]
