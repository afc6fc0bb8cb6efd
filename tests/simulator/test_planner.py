"""`grey plan` finds the node counts queueing theory says are the smallest, by search."""

from __future__ import annotations

import math
from typing import Any

import pytest

from runtime.config import ClusterConfig
from simulator import theory
from simulator.model import RunLength
from simulator.planner import min_stable_nodes, plan_capacity
from simulator.slo import parse_slo
from simulator.workload import Workload
from tests.simulator.builders import cluster, exp_fn, poisson, workload

LAM_CPU, LAM_GPU, LIMIT = 3.0, 1.5, 1.2


def two_pools(**extra: Any) -> tuple[ClusterConfig, Workload]:
    cfg = cluster(
        threads=1, nodes=1, pools={"gpu": {"nodes": 1, "threads_per_node": 1, "gpus_per_node": 1}}, **extra
    )
    wl = workload(
        {"f": exp_fn(1.0), "g": {**exp_fn(1.0), "resources": {"gpu": 1}}},
        poisson(LAM_CPU, {"function": "f", "priority": "critical"}),
        poisson(LAM_GPU, {"function": "g", "priority": "critical"}),
    )
    return cfg, wl


def smallest_c(lam: float, limit: float) -> int:
    c = math.floor(lam) + 1
    while theory.mmc_wait_quantile(c, lam, 1.0, 0.99) > limit:
        c += 1
    return c


def test_plan_matches_erlang_c_in_both_pools_with_few_simulations() -> None:
    cfg, wl = two_pools()
    slos = [parse_slo(f"p99 wait <= {LIMIT}s for critical")]
    plan = plan_capacity(
        cfg, wl, slos, RunLength(tasks=20_000, warmup_tasks=2000), seed=3, replications=3, max_nodes=64
    )
    assert plan.feasible
    assert plan.active_pools == ["cpu", "gpu"]
    assert plan.nodes == {"cpu": smallest_c(LAM_CPU, LIMIT), "gpu": smallest_c(LAM_GPU, LIMIT), "tee": 0}
    assert plan.nodes == {"cpu": 6, "gpu": 4, "tee": 0}  # the closed form's answer, spelled out
    # a search, not a grid: a 64-node grid per pool would be 63 x 63 candidates
    assert len(plan.evaluations) <= 5
    checks = [c for c in plan.answer.checks if c["pool"] in ("cpu", "gpu")]
    assert all(c["met"] and c["mean"] + c["ci95"] <= LIMIT for c in checks)
    assert all(c["ci95"] > 0 for c in checks)  # the answer comes with its interval
    # one fewer node misses the objective in each pool
    for pool in ("cpu", "gpu"):
        fewer = [e for e in plan.evaluations if e.nodes[pool] == plan.nodes[pool] - 1]
        assert fewer and not fewer[0].met[pool]


def test_stability_floor_is_where_utilization_drops_below_one() -> None:
    cfg, wl = two_pools()
    assert min_stable_nodes(cfg, wl) == {"cpu": 4, "gpu": 2, "tee": 0}


def test_objective_no_node_count_can_meet_is_reported_infeasible() -> None:
    cfg, wl = two_pools(rate_limits={"submit": 60})  # 1/s allowed, 3/s offered: 429s
    plan = plan_capacity(
        cfg,
        wl,
        [parse_slo("rejected <= 1% for critical")],
        RunLength(tasks=4000, warmup_tasks=400),
        seed=1,
        replications=2,
        max_nodes=8,
    )
    assert not plan.feasible
    assert "cpu" in plan.infeasible_pools
    assert plan.answer.mean["by_pool"]["cpu"]["rejected_by_reason"]["rate_limited"] > 0


@pytest.mark.parametrize(
    ("text", "metric", "stat", "limit", "scope"),
    [
        ("p99 e2e <= 2s for critical", "e2e", "p99", 2.0, "critical"),
        ("p95 end-to-end ≤ 250ms", "e2e", "p95", 0.25, None),
        ("mean wait <= 1.5 for gpu", "wait", "mean", 1.5, "gpu"),
        ("rejected <= 1%", "rejected_fraction", None, 0.01, None),
        ("utilization <= 0.8 for cpu", "utilization", None, 0.8, "cpu"),
    ],
)
def test_slo_texts_parse(text: str, metric: str, stat: str | None, limit: float, scope: str | None) -> None:
    slo = parse_slo(text)
    assert (slo.metric, slo.stat, slo.scope) == (metric, stat, scope)
    assert slo.limit == pytest.approx(limit)


@pytest.mark.parametrize(
    "text", ["p98 e2e <= 2s", "p99 e2e >= 2s", "rejected <= 2s", "p99 e2e <= 2s for vip", "p99 e2e <= 5%"]
)
def test_bad_slo_texts_say_what_was_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected|latency limit|fraction limit"):
        parse_slo(text)
