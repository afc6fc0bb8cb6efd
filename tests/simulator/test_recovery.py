"""A node failed at a set time (`Outage`) and the recovery figures read from arrivals and
finishes: the same function reads the test-bed's records and the twin's runs."""

from __future__ import annotations

import pytest

from simulator.heartbeats import Beats, Heartbeats
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


def _killed(
    timeout: float, down_for: float, beats: Beats | None = None, reps: int = 4, pick: str = "mean"
) -> dict[str, float | None]:
    cfg = cluster(threads=2, nodes=2, heartbeat={"interval_seconds": 1, "timeout_seconds": timeout})
    wl = workload({"f": {"service": {"dist": "constant", "value": 0.5}}}, poisson(2.0))
    outage = Outage("cpu", 0, at=10.0, down_for=down_for, on_start_within=5.0, beats=beats)
    return predict_recovery(cfg, wl, 2.0, 30.0, outage, replications=reps)[pick]


def test_a_dead_node_is_noticed_at_the_first_peer_tick_after_its_last_beat_is_timeout_old() -> None:
    hb = Heartbeats(interval=5.0, timeout=15.0, uniform=lambda: 0.0)
    # Died at 100 having beaten 3.3 s before; peers beat 3.6 s and 0.2 s before the death.
    beats = Beats(killed_ago=3.3, peers_ago=[3.6, 0.2])
    # Due at 111.7; the first peer ticks at 111.4 (too early), 116.4, the second at 114.8.
    assert hb.detected("n", 100.0, [], beats) == pytest.approx(114.8)
    # Drawn phases: the node beats at 0, 5, 10, ...; the peers at 1 + 5k and 4 + 5k.
    phases = iter([0.0, 0.2, 0.8])
    drawn = Heartbeats(interval=5.0, timeout=15.0, uniform=lambda: next(phases))
    assert drawn.last_beat("n", 102.0) == pytest.approx(100.0)
    assert drawn.detected("n", 102.0, ["a", "b"]) == pytest.approx(116.0)
    assert drawn.detected("n", 102.0, []) == float("inf")  # nobody left to notice
    # Beats 5.2 s apart (each beat took 0.2 s): the first peer ticks at 101.6, 106.8, 112.0,
    # just after the due time, where 5 s periods missed it (111.4) and waited until 116.4.
    slow = Beats(killed_ago=3.3, peers_ago=[3.6], period=5.2)
    assert hb.detected("n", 100.0, [], slow) == pytest.approx(112.0)
    assert hb.detected("n", 100.0, [], Beats(killed_ago=3.3, peers_ago=[3.6])) == pytest.approx(116.4)


def test_the_detection_spreads_over_two_intervals_around_the_timeout() -> None:
    # The killed node's last beat and two peers' ticks at random phases: from one interval
    # early to one late, on average interval/2 - interval/3 early.
    import numpy as np

    rng = np.random.default_rng(1)
    found = []
    for _ in range(4000):
        hb = Heartbeats(interval=1.0, timeout=3.0, uniform=lambda: float(rng.random()))
        found.append(hb.detected("n", 50.0, ["a", "b"]) - 50.0)
    assert min(found) >= 2.0 and max(found) <= 4.0
    assert float(np.mean(found)) == pytest.approx(3.0 - 1.0 / 2 + 1.0 / 3, abs=0.02)


def test_the_twin_hands_a_dead_nodes_tasks_back_when_a_peer_notices() -> None:
    soon, late = _killed(timeout=3.0, down_for=20.0), _killed(timeout=8.0, down_for=20.0)

    assert soon["lost"] == 0 and late["lost"] == 0
    assert soon["in flight"] is not None and soon["in flight"] >= 1  # killed as it started one
    # Noticed within an interval (1 s) of the timeout, then re-run (0.5 s each, at most two)
    # on the other node.
    assert soon["in-flight recovery"] is not None and 2.5 <= soon["in-flight recovery"] <= 5.0
    assert late["in-flight recovery"] is not None and 7.5 <= late["in-flight recovery"] <= 10.0


def test_given_the_beats_measured_at_a_kill_the_twin_notices_when_the_runtime_did() -> None:
    # Last beat 0.7 s before the kill: due 2.3 s after it; the peers (gateway, other worker)
    # tick 0.1 s and 0.9 s after their beats: the gateway's tick at 2.9 s notices it.
    beats = Beats(killed_ago=0.7, peers_ago=[0.1, 0.4])
    # The other worker ticks at 2.6 s; then each task runs 0.5 s there (the first at once, a
    # second behind it or behind the traffic that other node carries).
    first = _killed(timeout=3.0, down_for=20.0, beats=beats, pick="min")["in-flight recovery"]
    last = _killed(timeout=3.0, down_for=20.0, beats=beats, pick="max")["in-flight recovery"]
    assert first == pytest.approx(2.6 + 0.5, abs=0.02)
    assert last is not None and last <= 2.6 + 1.0 + 0.5


def test_a_node_back_before_its_tasks_were_noticed_notices_them_itself() -> None:
    # Back 1.2 s after its death, the restarted node first ticks 1 s later; the dead node's
    # last beat is 3 s old at 2.3 s (due), the peers tick only at 2.6 s and later: the
    # restarted node's tick at 2.2 s is too early, its next at 3.2 s is after theirs.
    beats = Beats(killed_ago=0.7, peers_ago=[0.1, 0.4])
    first = _killed(timeout=3.0, down_for=1.2, beats=beats, pick="min")["in-flight recovery"]
    assert first == pytest.approx(2.6 + 0.5, abs=0.02)
    # No peers: only the restarted node (back at 5 s, first tick at 6 s) notices.
    alone = Beats(killed_ago=0.7, peers_ago=[])
    back = _killed(timeout=3.0, down_for=5.0, beats=alone, pick="min")["in-flight recovery"]
    assert back == pytest.approx(6.0 + 0.5, abs=0.02)
