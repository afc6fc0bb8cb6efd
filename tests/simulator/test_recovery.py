"""A node failed at a set time (`Outage`) and the recovery figures read from arrivals and
finishes: the same function reads the test-bed's records and the twin's runs."""

from __future__ import annotations

import pytest

from simulator.model import Outage
from simulator.recovery import predict_recovery, recovery_figures
from tests.simulator.builders import cluster, poisson, workload


def test_recovery_figures_of_a_steady_stream_with_one_task_held_back() -> None:
    arrivals = [i * 0.1 for i in range(200)]  # 10/s for 20 s, each done 0.05 s later
    finishes: list[float | None] = [a + 0.05 for a in arrivals]
    finishes[101] = 13.5  # in flight at the kill (t = 10.1), back 3.4 s later

    found = recovery_figures(arrivals, finishes, [13.5], at=10.1, blind=3.0)

    assert found["throughput before"] == pytest.approx(10.0, rel=0.02)
    assert found["in-flight recovery"] == pytest.approx(3.4)
    assert found["recovery"] == pytest.approx(3.4, abs=0.1)
    assert found["lost"] == 0


def test_a_task_that_never_finishes_is_lost_and_nothing_recovered() -> None:
    arrivals = [i * 0.1 for i in range(100)]
    finishes: list[float | None] = [a + 0.05 for a in arrivals]
    finishes[60] = None

    found = recovery_figures(arrivals, finishes, [None], at=6.02, blind=3.0)

    assert found["lost"] == 1
    assert found["in-flight recovery"] is None and found["recovery"] is None


def _killed(timeout: float, down_for: float) -> dict[str, float | None]:
    cfg = cluster(threads=2, nodes=2, heartbeat={"interval_seconds": 1, "timeout_seconds": timeout})
    wl = workload({"f": {"service": {"dist": "constant", "value": 0.5}}}, poisson(2.0))
    outage = Outage("cpu", 0, at=10.0, down_for=down_for, on_start_within=5.0)
    return predict_recovery(cfg, wl, 2.0, 30.0, outage, replications=4)["mean"]


def test_the_twin_hands_a_dead_nodes_tasks_back_after_the_heartbeat_timeout() -> None:
    soon, late = _killed(timeout=3.0, down_for=2.0), _killed(timeout=8.0, down_for=2.0)

    assert soon["lost"] == 0 and late["lost"] == 0
    assert soon["in flight"] is not None and soon["in flight"] >= 1  # killed as it started one
    # Detected at the timeout, then re-run (0.5 s each, at most two of them) on the other node.
    assert soon["in-flight recovery"] is not None and 3.5 <= soon["in-flight recovery"] <= 4.5
    assert late["in-flight recovery"] is not None and 8.5 <= late["in-flight recovery"] <= 9.5


def test_a_node_back_later_than_the_timeout_holds_its_tasks_no_longer() -> None:
    # The other node takes them back at the timeout; the restart does not matter to them.
    back = _killed(timeout=3.0, down_for=20.0)["in-flight recovery"]
    assert back is not None and 3.5 <= back <= 4.5
