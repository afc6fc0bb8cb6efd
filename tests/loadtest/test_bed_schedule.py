"""The test-bed's drawn schedule and the figures it reads from task records."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.bed.records import TaskRecord, figures
from loadtest.bed.run import Level, parse_levels
from loadtest.bed.schedule import draw_schedule, read_schedule, write_schedule
from tests.simulator.builders import exp_fn, poisson, workload


def _workload() -> object:
    mix = [
        {"function": "a", "priority": "critical", "weight": 1},
        {"function": "b", "priority": "low", "weight": 3},
    ]
    return workload({"a": exp_fn(0.1), "b": exp_fn(0.5)}, poisson(4.0, *mix))


def test_schedule_offers_the_requested_rate_and_mix() -> None:
    arrivals = draw_schedule(_workload(), rate=50.0, duration=200.0, seed=3)  # type: ignore[arg-type]
    assert len(arrivals) == pytest.approx(50 * 200, rel=0.05)
    share_b = sum(a.function == "b" for a in arrivals) / len(arrivals)
    assert share_b == pytest.approx(0.75, abs=0.02)
    assert all(a.priority == ("critical" if a.function == "a" else "low") for a in arrivals)
    mean_b = sum(a.seconds for a in arrivals if a.function == "b") / sum(a.function == "b" for a in arrivals)
    assert mean_b == pytest.approx(0.5, rel=0.05)
    assert [a.at for a in arrivals] == sorted(a.at for a in arrivals)
    assert arrivals[-1].at < 200.0


def test_schedule_is_reproducible_by_seed_and_round_trips(tmp_path: Path) -> None:
    first = draw_schedule(_workload(), 10.0, 20.0, seed=1)  # type: ignore[arg-type]
    assert first == draw_schedule(_workload(), 10.0, 20.0, seed=1)  # type: ignore[arg-type]
    assert first != draw_schedule(_workload(), 10.0, 20.0, seed=2)  # type: ignore[arg-type]
    assert read_schedule(write_schedule(first, tmp_path / "s.json")) == first


def test_levels_parse_rates_and_shares_of_capacity() -> None:
    assert parse_levels("5, 10") == [Level(5.0), Level(10.0)]
    assert parse_levels("50%,100%") == [Level(0.5, True), Level(1.0, True)]
    for bad in ("", "x", "-5", "0%"):
        with pytest.raises(ValueError, match="levels"):
            parse_levels(bad)


def _record(created: float, wait: float, service: float, priority: str = "normal") -> TaskRecord:
    started = created + wait
    return TaskRecord("f", priority, "completed", created, started, started + service, service)


def test_figures_measure_wait_e2e_and_throughput_after_the_warmup() -> None:
    records = [_record(i * 0.1, wait=0.01 * (i % 10), service=0.05) for i in range(1000)]
    result = figures(records)
    assert result["overall"]["measured"] == 900
    assert result["throughput"] == pytest.approx(10.0, rel=0.01)
    assert result["overall"]["wait"]["p50"] == pytest.approx(0.045, abs=0.006)
    assert result["overall"]["e2e"]["p95"] == pytest.approx(0.09 + 0.05, abs=0.006)
    assert set(result["by_priority"]) == {"normal"}
