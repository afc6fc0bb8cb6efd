"""`grey plan-verify` in small: the twin names the fewest nodes meeting an objective, the bed
starts that cluster and measures the objective met, and one node fewer measures it missed.

The tasks sleep (0.5 s on average), so capacity is worker threads, not this machine's two
cores; and the runtime's own per-task cost is small beside them, so the twin needs no
calibration run here (`grey plan-verify --calibration` plans on a calibrated one). The load
is chosen so that the answer is robust on a shared, noisy machine: the planned two nodes run
at about 60 % of their threads, one node is offered more than it can do. Real processes, as
in tests/e2e/test_testbed.py. About 60 s on two idle cores (minutes on a loaded machine).
"""

from __future__ import annotations

from pathlib import Path

from loadtest.bed.plan import verify_plan
from loadtest.bed.run import BedOptions
from runtime.config import load_cluster_config
from simulator.slo import parse_slo
from simulator.workload import load_workload
from tests.e2e.bed import require_bed

RATE = 10.0  # tasks/s: 5 busy threads at 0.5 s each; nodes have 4 threads
OBJECTIVE = "p95 wait <= 1s"


def test_the_planned_cluster_meets_the_objective_and_one_node_fewer_misses_it(tmp_path: Path) -> None:
    require_bed()
    cluster_file, workload_file = tmp_path / "cluster.yaml", tmp_path / "workload.yaml"
    cluster_file.write_text(
        "version: 1\npools:\n  cpu: {nodes: 1, threads_per_node: 4}\n"
        "rate_limits: {window_seconds: 60, submit: 1000000}\n"
    )
    workload_file.write_text(
        "version: 1\nfunctions:\n  work: {service: {dist: lognormal, mean: 0.5, cv: 0.3}}\n"
        f"streams:\n  - arrivals: {{process: poisson, rate: {RATE}}}\n    mix:\n"
        "      - {function: work, priority: normal, weight: 1}\n"
    )
    workload = load_workload(workload_file)
    found = verify_plan(
        load_cluster_config(cluster_file),
        workload,
        workload,
        [parse_slo(OBJECTIVE)],
        RATE,
        BedOptions(seconds=12.0, users=16, seed=2),
        tmp_path / "out",
        twin_seconds=60.0,
    )

    trials = {trial["nodes"]: trial for trial in found["trials"]}
    named = found["nodes"]
    shown = {n: [(c["measured"], c["predicted"]) for c in t["checks"]] for n, t in trials.items()}
    assert named - 1 in trials, f"the planner named {named} node(s): nothing fewer to try"
    for trial in trials.values():
        assert trial["failed"] == 0 and trial["submit_failures"] == 0, trial
    assert trials[named]["met"], f"{named} nodes missed {OBJECTIVE} (measured, twin): {shown}"
    assert not trials[named - 1]["met"], f"{named - 1} nodes met {OBJECTIVE} (measured, twin): {shown}"
