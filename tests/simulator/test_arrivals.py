"""Arrival processes: rates, the diurnal shape from thinning, MMPP burstiness, trace replay."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from runtime.config import ConfigError
from simulator.arrivals import arrival_times, diurnal_rate, trace_rows
from simulator.model import RunLength
from simulator.twin import Twin
from simulator.workload import MMPP, Diurnal, Poisson, Trace, mean_rate
from tests.simulator.builders import cluster, trace_workload


def take_until(it: Iterable[float], horizon: float) -> np.ndarray:
    return np.fromiter(itertools.takewhile(lambda t: t < horizon, it), dtype=float)


def test_poisson_gaps_are_exponential_with_the_given_rate() -> None:
    times = take_until(arrival_times(np.random.default_rng(1), Poisson(process="poisson", rate=4.0)), 50_000)
    gaps = np.diff(times)
    assert len(times) / 50_000 == pytest.approx(4.0, rel=0.01)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.02)  # CV of an exponential
    assert np.all(gaps >= 0)


def test_diurnal_thinning_follows_the_rate_curve_over_the_cycle() -> None:
    spec = Diurnal(process="diurnal", mean_rate=40.0, amplitude=0.8, period_seconds=100.0, peak_seconds=25.0)
    periods = 300
    times = take_until(arrival_times(np.random.default_rng(2), spec), periods * 100.0)
    counts, edges = np.histogram(times % 100.0, bins=10, range=(0, 100))
    grid = np.linspace(0, 100, 10_001)
    rate = diurnal_rate(spec, grid)
    expected = [
        np.trapezoid(rate[(grid >= a) & (grid <= b)], grid[(grid >= a) & (grid <= b)]) * periods
        for a, b in itertools.pairwise(edges)
    ]
    np.testing.assert_allclose(counts, expected, rtol=0.03)
    # the peak slice really is busier than the trough by about (1 + a) / (1 - a)
    assert counts[2] / counts[7] > 5


def test_diurnal_profile_gives_piecewise_constant_rates() -> None:
    spec = Diurnal(process="diurnal", mean_rate=10.0, period_seconds=40.0, profile=[1.0, 3.0, 0.0, 0.0])
    times = take_until(arrival_times(np.random.default_rng(3), spec), 40.0 * 500)
    counts, _ = np.histogram(times % 40.0, bins=4, range=(0, 40))
    # mean 10/s with multipliers (1, 3, 0, 0) / mean 1 -> 10 and 30 per second
    np.testing.assert_allclose(counts[:2] / (10.0 * 500), [10.0, 30.0], rtol=0.03)
    assert counts[2] == 0 and counts[3] == 0


def test_mmpp_has_its_stationary_mean_rate_and_is_burstier_than_poisson() -> None:
    spec = MMPP(process="mmpp", rates=[2.0, 30.0], mean_durations=[40.0, 10.0])
    horizon = 200_000.0
    times = take_until(arrival_times(np.random.default_rng(4), spec), horizon)
    assert len(times) / horizon == pytest.approx(mean_rate(spec), rel=0.04)
    assert mean_rate(spec) == pytest.approx((2 * 40 + 30 * 10) / 50)
    counts, _ = np.histogram(times, bins=int(horizon / 10), range=(0, horizon))
    assert counts.var() / counts.mean() > 5  # index of dispersion; 1 for Poisson
    pois = take_until(
        arrival_times(np.random.default_rng(5), Poisson(process="poisson", rate=mean_rate(spec))), horizon
    )
    pc, _ = np.histogram(pois, bins=int(horizon / 10), range=(0, horizon))
    assert pc.var() / pc.mean() == pytest.approx(1.0, abs=0.1)


def test_trace_rows_carry_every_field_and_fall_back_when_absent(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"time": 1.5, "tenant": "a", "function": "f", "priority": "high",'
        ' "resources": {"cpu": 2, "memory_gb": 3, "gpu": 1}, "service_time": 0.25}\n'
        "\n"
        '{"time": 2, "function": "g"}\n'
    )
    rows = list(trace_rows(Trace(process="trace", path=str(path), time_scale=2.0)))
    assert [r.time for r in rows] == [3.0, 4.0]
    first, second = rows
    assert (first.tenant, first.function, first.priority) == ("a", "f", "high")
    assert (first.cpu, first.memory_gb, first.gpu, first.service_time) == (2.0, 3.0, 1, 0.25)
    assert (second.tenant, second.priority, second.cpu, second.service_time) == (None, "normal", None, None)


@pytest.mark.parametrize(
    ("body", "where", "what"),
    [
        ("time,function\n5,f\n4,f\n", "line 3", "sorted by time"),
        ("time,function,priority\n1,f,urgent\n", "line 2", "priority"),
        ("time,function,gpu\n1,f,two\n", "line 2", "'gpu': expected an integer"),
        ("time,fn\n1,f\n", "line 1", "expected a header"),
        ("time,function,service_time\n1,f,-3\n", "line 2", ">= 0"),
    ],
)
def test_bad_trace_rows_name_the_file_and_line(tmp_path: Path, body: str, where: str, what: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        list(trace_rows(Trace(process="trace", path=str(path))))
    msg = str(info.value)
    assert str(path) in msg and where in msg and what in msg


def test_trace_replay_submits_at_the_recorded_times_with_recorded_service(tmp_path: Path) -> None:
    rows = ["0,a,f,normal,2.0", "1,a,f,normal,2.0", "10,b,f,critical,0.5"]
    wl = trace_workload(tmp_path, rows)
    res = Twin(cluster(threads=1), wl, RunLength(tasks=3)).run()
    o = res["overall"]
    assert o["completed"] == 3
    # task 2 waits 1 s for task 1 (0..2), task 3 finds the server idle
    assert o["wait"]["max"] == pytest.approx(1.0)
    assert res["by_priority"]["critical"]["e2e"]["max"] == pytest.approx(0.5)
    assert o["e2e"]["mean"] == pytest.approx((2.0 + 3.0 + 0.5) / 3)
    assert math.isclose(res["window"]["end"], 10.0)
