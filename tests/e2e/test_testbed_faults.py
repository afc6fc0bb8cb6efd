"""A worker killed mid-run on a real cluster: no task is lost, and the twin told the same event
predicts how long the killed worker's tasks take to come back.

It runs real processes (see tests/e2e/test_testbed.py): two `grey worker`s on a redis-server
and a PostgreSQL database of their own, a heartbeat timeout of 3 s so that recovery takes
seconds. About 40 s on two cores.
"""

from __future__ import annotations

from pathlib import Path

from loadtest.bed.run import BedOptions, Level, run_bed
from runtime.config import ClusterConfig, load_cluster_config
from simulator.fidelity import compare
from simulator.workload import load_workload
from tests.e2e.bed import require_bed

HEARTBEAT = (1.0, 3.0)  # interval, timeout (s)
# The twin is given the heartbeat phases and period the bed read before the kill
# (simulator/heartbeats.py), so it notices the dead node at the reaper tick the runtime used;
# what is left for the in-flight tasks is their re-run's wait for a thread like any task's:
# the twin's mean is held to one interval plus 1 s.
BOUND_SECONDS = HEARTBEAT[0] + 1.0
# The backlog's end also depends on the arrivals after the kill, which the twin draws
# independently of the bed's schedule (on 12 s of 2.5 tasks/s its runs spread over 3-5 s):
# the measured figure must lie within the twin's runs, widened by 1 s.
SPREAD_SLACK_SECONDS = 1.0


def _cluster(path: Path) -> ClusterConfig:
    path.write_text(
        "version: 1\npools:\n  cpu: {nodes: 2, threads_per_node: 2}\n"
        f"heartbeat: {{interval_seconds: {HEARTBEAT[0]}, timeout_seconds: {HEARTBEAT[1]}}}\n"
        "rate_limits: {window_seconds: 60, submit: 1000000}\n"
    )
    return load_cluster_config(path)


def test_a_killed_worker_loses_no_task_and_recovers_as_the_twin_predicts(tmp_path: Path) -> None:
    require_bed()
    workload_file = tmp_path / "workload.yaml"
    workload_file.write_text(
        "version: 1\nfunctions:\n  work: {service: {dist: lognormal, mean: 0.5, cv: 0.3}}\n"
        "streams:\n  - arrivals: {process: poisson, rate: 2.5}\n    mix:\n"
        "      - {function: work, priority: critical, weight: 1}\n"
        "      - {function: work, priority: normal, weight: 2}\n"
    )
    cluster_file = tmp_path / "cluster.yaml"
    cluster, workload = _cluster(cluster_file), load_workload(workload_file)
    options = BedOptions(seconds=12.0, users=8, seed=3, kill_worker_at=4.0)
    run = run_bed(cluster_file, cluster, workload, [Level(2.5)], options, tmp_path / "run")

    level = run["levels"][0]
    kill = level["kill"]
    assert kill["error"] is None, kill["error"]
    assert kill["figures"]["in flight"] >= 1, "the killed worker was running nothing: it tested nothing"
    assert kill["tasks_lost"] == 0, f"{kill['tasks_lost']} tasks never completed"
    assert level["figures"]["failed"] == 0
    assert level["submit"]["failures"] == 0

    rows, _ = compare(cluster, workload, run, replications=10)
    by_figure = {row["figure"]: row for row in rows}
    for figure in ("kill: in-flight recovery", "kill: recovery"):
        row = by_figure[figure]
        assert row["measured"] is not None and row["predicted"] is not None, row
        found = (
            f"{figure}: measured {row['measured']:.2f} s, twin {row['predicted']:.2f} s "
            f"(its runs {row['predicted_min']:.2f}-{row['predicted_max']:.2f} s; noticed "
            f"{kill['detected_seconds']} s after the kill, beats every {kill['beat_period']} s)"
        )
        if figure == "kill: in-flight recovery":
            assert abs(row["measured"] - row["predicted"]) <= BOUND_SECONDS, found
        else:
            slack = SPREAD_SLACK_SECONDS
            assert row["predicted_min"] - slack <= row["measured"] <= row["predicted_max"] + slack, found
