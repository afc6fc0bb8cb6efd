"""The test-bed closed in small: a real cluster under load, the twin calibrated on it, and the
twin's prediction of a level it did not see, within a stated error.

A change to the runtime that the twin does not know about (a new per-task cost, a lost
thread, a slower dispatch) moves the measured figures away from the prediction and fails it.

It runs real processes: its own redis-server, a PostgreSQL database of its own on
127.0.0.1:5432 (or GREY_TEST_POSTGRES_URL), a `grey serve` gateway, a `grey worker` and a
headless Locust. Without redis-server or PostgreSQL it is skipped with a message naming what
is missing, and fails when CI is set. About a minute on two cores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadtest.bed.run import BedOptions, Level, run_bed
from runtime.config import ClusterConfig
from simulator.calibration import calibrate, write_calibration
from simulator.fidelity import compare
from simulator.workload import Workload, load_workload
from tests.e2e.bed import require_bed

# Bounds of this small run (8 s per level, one replication of reality): throughput and the
# median end-to-end time within 20 %; the 10 % targets hold for the full-length runs
# of `grey loadtest` + `grey calibrate` (docs/simulator.md).
BOUNDS = {"throughput": 0.20, "e2e p50": 0.20}


def _cluster(path: Path) -> ClusterConfig:
    path.write_text(
        "version: 1\npools:\n  cpu: {nodes: 1, threads_per_node: 4}\n"
        "rate_limits: {window_seconds: 60, submit: 1000000}\n"
    )
    return ClusterConfig.model_validate(
        {
            "pools": {"cpu": {"nodes": 1, "threads_per_node": 4}},
            "rate_limits": {"window_seconds": 60, "submit": 10**6},
        }
    )


def _workload(path: Path) -> Workload:
    path.write_text(
        "version: 1\nfunctions:\n"
        "  short: {service: {dist: lognormal, mean: 0.1, cv: 0.5}}\n"
        "  long: {service: {dist: exponential, mean: 0.3}}\n"
        "streams:\n  - arrivals: {process: poisson, rate: 10}\n    mix:\n"
        "      - {function: short, priority: critical, weight: 3}\n"
        "      - {function: long, priority: normal, weight: 1}\n"
    )
    return load_workload(path)


def _only(run: dict[str, Any], indices: list[int]) -> dict[str, Any]:
    return {**run, "levels": [run["levels"][i] for i in indices]}


def test_calibrated_twin_predicts_an_unseen_level_of_a_real_cluster(tmp_path: Path) -> None:
    require_bed()
    cluster_file, workload_file = tmp_path / "cluster.yaml", tmp_path / "workload.yaml"
    cluster, workload = _cluster(cluster_file), _workload(workload_file)
    options = BedOptions(seconds=8.0, users=16, seed=5, probe=1.5)
    # probe, then the same share of capacity twice: different draws (seeds) of the workload.
    run = run_bed(
        cluster_file, cluster, workload, [Level(0.6, True), Level(0.6, True)], options, tmp_path / "run"
    )
    assert all(level["figures"]["failed"] == 0 for level in run["levels"])
    assert all(level["submit"]["failures"] == 0 for level in run["levels"])
    records = [json.loads((tmp_path / "run" / level["records"]).read_text()) for level in run["levels"]]

    calibration = calibrate(_only(run, [0, 1]), [records[0], records[1]])
    paths = write_calibration(run, workload, calibration, tmp_path / "calibration")
    rows, _ = compare(
        cluster, load_workload(paths["workload"]), _only(run, [2]), replications=5, hold=calibration.hold
    )

    errors = {row["figure"]: row["error"] for row in rows}
    report = ", ".join(f"{row['figure']} {row['measured']:.3f} vs {row['predicted']:.3f}" for row in rows)
    for figure, bound in BOUNDS.items():
        assert abs(errors[figure]) <= bound, f"{figure}: error {errors[figure]:+.1%} > {bound:.0%} ({report})"
