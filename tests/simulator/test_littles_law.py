"""Little's law, L = lambda W, on every run: L from the time-average number of tasks in the
system, lambda and W from the tasks themselves, so any task lost or counted twice shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.config import load_cluster_config
from simulator.model import RunLength
from simulator.twin import Twin
from simulator.workload import load_workload
from tests.simulator.builders import cluster, exp_fn, poisson, workload

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_littles_law_on_the_example_cluster_with_every_feature_on() -> None:
    """Three pools, four priorities, five arrival kinds (trace included), retries, quotas,
    rejections and node failures."""
    cfg = load_cluster_config(EXAMPLES / "cluster.yaml").with_nodes({"cpu": 6})
    wl = load_workload(EXAMPLES / "workload.yaml")
    res = Twin(cfg, wl, RunLength(until=1800, warmup_time=180), seed=5).run()
    ll = res["littles_law"]
    assert res["overall"]["completed"] > 50_000
    assert res["overall"]["retries"] > 0
    assert res["overall"]["rejected"] > 0
    assert {p for p, b in res["by_pool"].items() if b["completed"]} == {"cpu", "gpu", "tee"}
    assert ll["rel_error"] < 0.02, ll


@pytest.mark.parametrize("policy", ["strict", "fifo"])
def test_littles_law_per_pool_under_both_policies(policy: str) -> None:
    wl = workload(
        {"f": exp_fn(0.5), "g": {"service": {"dist": "exponential", "mean": 2.0}, "resources": {"gpu": 1}}},
        poisson(
            3.0, {"function": "f", "priority": "critical"}, {"function": "f", "priority": "low", "weight": 3}
        ),
        poisson(0.5, {"function": "g", "priority": "normal"}),
    )
    cfg = cluster(
        threads=2,
        nodes=1,
        policy=policy,
        pools={"gpu": {"nodes": 1, "threads_per_node": 2, "gpus_per_node": 2}},
    )
    res = Twin(cfg, wl, RunLength(tasks=40_000, warmup_tasks=4000), seed=9).run()
    window = res["window"]["length"]
    for pool in ("cpu", "gpu"):
        b = res["by_pool"][pool]
        lam = b["accepted"] / window
        assert b["mean_in_system"] == pytest.approx(lam * b["e2e"]["mean"], rel=0.03)
    assert res["littles_law"]["rel_error"] < 0.02
