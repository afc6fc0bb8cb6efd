"""Calibration from a load run's records, scaling a workload, and the twin's predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from simulator.calibration import calibrate, unqueued_waits, write_calibration
from simulator.fidelity import compare, predict_level, relative_error
from simulator.scaling import at_rate, mean_service, total_rate
from simulator.workload import Constant, load_workload
from tests.simulator.builders import cluster, exp_fn, poisson, workload


def test_scaling_multiplies_every_rate_and_keeps_the_mix() -> None:
    wl = workload(
        {"f": exp_fn(0.2), "g": exp_fn(1.0)}, poisson(2.0, {"function": "f"}), poisson(6.0, {"function": "g"})
    )
    scaled = at_rate(wl, 16.0)
    assert total_rate(scaled) == pytest.approx(16.0)
    assert [s.arrivals.rate for s in scaled.streams] == pytest.approx([4.0, 12.0])  # type: ignore[union-attr]
    assert mean_service(scaled) == pytest.approx(0.25 * 0.2 + 0.75 * 1.0)
    with pytest.raises(ValueError, match="> 0"):
        at_rate(wl, 0)


def _run(capacity: float, threads: int = 4) -> dict[str, Any]:
    level = {"offered_rate": 5.0, "cpu_percent": {"gateway-1": 10.0}, "wall_seconds": 10.0, "scheduled": 50}
    return {
        "cluster": cluster(threads=threads).model_dump(mode="json"),
        "capacity": capacity,
        "options": {"seconds": 10.0},
        "levels": [{**level, "probe": True, "offered_rate": 50.0}, level],
    }


def _records(n: int, wait: float, service: float, execution: float) -> list[dict[str, Any]]:
    return [
        {
            "function": "f",
            "status": "completed",
            "created": i,
            "started": i + wait,
            "completed": i + wait + service,
            "execution": execution,
        }
        for i in range(n)
    ]


def _saturated(threads: int, service: float, gap: float, rounds: int) -> list[dict[str, Any]]:
    """Every thread busy: a task `service` s between its stamps, then `gap` s of thread time."""
    rows = []
    for k in range(rounds):
        for _ in range(threads):
            started = k * (service + gap)
            rows.append(
                {
                    "function": "f",
                    "status": "completed",
                    "created": started - 0.5,
                    "started": started,
                    "completed": started + service,
                    "execution": service - 0.01,
                }
            )
    return rows


def test_calibration_measures_service_hold_and_dispatch() -> None:
    # 4 threads, 0.1 s between the stamps and 0.025 s outside them: a thread per 0.125 s.
    probe = _saturated(threads=4, service=0.1, gap=0.025, rounds=400)
    low = _records(100, wait=0.004, service=0.1, execution=0.09)
    found = calibrate(_run(capacity=32.0), [probe, low])
    assert found.hold == pytest.approx(0.025, rel=0.02)
    assert found.dispatch == pytest.approx(0.004)
    assert found.dispatch_samples == pytest.approx([0.004] * 100)
    assert found.service_means["f"] == pytest.approx(0.1)
    assert found.report()["worker_overhead_inside_stamps"]["f"] == pytest.approx(0.01)
    assert np.mean(found.samples["f"]) == pytest.approx(0.125, rel=0.01)
    assert found.gateway_cpu_ms_per_task == pytest.approx(20.0)


def test_calibrated_files_load_and_resample_the_measured_times(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    records = [
        {
            "function": "f",
            "status": "completed",
            "created": 0.0,
            "started": 0.0,
            "completed": float(s),
            "execution": None,
        }
        for s in rng.exponential(0.2, 400)
    ]
    wl = workload({"f": exp_fn(0.2)}, poisson(5.0, {"function": "f"}))
    found = calibrate(_run(capacity=0.0), [records, records])
    paths = write_calibration(_run(capacity=0.0), wl, found, tmp_path)
    loaded = load_workload(paths["workload"])
    assert loaded.functions["f"].service.dist == "empirical"
    assert loaded.dispatch is not None and loaded.dispatch.dist == "empirical"
    assert loaded.prefetch_per_thread == 2  # the runtime's Dramatiq workers: 2 per thread
    assert mean_service(loaded) == pytest.approx(float(np.mean([r["completed"] for r in records])))


def test_a_constant_dispatch_delay_shifts_waits_and_keeps_throughput() -> None:
    wl = workload({"f": exp_fn(0.1)}, poisson(1.0, {"function": "f"}))
    delayed = wl.model_copy(update={"dispatch": Constant(dist="constant", value=0.05)})
    unlimited = cluster(threads=4, rate_limits={"submit": 10**9})
    plain = predict_level(unlimited, wl, 20.0, 400.0, seed=1, replications=2)
    shifted = predict_level(unlimited, delayed, 20.0, 400.0, seed=1, replications=2)
    assert plain["throughput"] == pytest.approx(20.0, rel=0.05)
    # quantiles come from 0.5 %-wide histogram bins
    assert shifted["e2e p50"] - plain["e2e p50"] == pytest.approx(0.05, abs=2e-3)
    assert shifted["wait p95"] - plain["wait p95"] == pytest.approx(0.05, abs=2e-3)
    assert shifted["throughput"] == pytest.approx(plain["throughput"], rel=1e-3)  # window edges


def test_relative_error_is_signed() -> None:
    assert relative_error(11.0, 10.0) == pytest.approx(0.1)
    assert relative_error(9.0, 10.0) == pytest.approx(-0.1)


def test_comparison_has_a_row_per_figure_overall_and_per_priority() -> None:
    mix = [{"function": "f", "priority": "critical"}, {"function": "f", "priority": "normal"}]
    wl = workload({"f": exp_fn(0.1)}, poisson(10.0, *mix))
    block = {"count": 5, "mean": 0.1, "p50": 0.1, "p95": 0.2, "p99": 0.3}
    figures = {
        "offered": 10.0,
        "throughput": 10.0,
        "overall": {"wait": block, "e2e": block},
        "by_priority": {"critical": {"wait": block, "e2e": block}, "normal": {"wait": block, "e2e": block}},
    }
    run = {
        "options": {"seconds": 60.0},
        "capacity": 40.0,
        "levels": [{"offered_rate": 10.0, "figures": figures}],
    }
    rows, _ = compare(cluster(threads=4, rate_limits={"submit": 10**9}), wl, run, replications=1)
    names = [row["figure"] for row in rows]
    assert names[:5] == ["throughput", "wait p50", "wait p95", "e2e p50", "e2e p95"]
    assert {"wait p95 critical", "wait p95 normal", "e2e p50 critical"} <= set(names)
    assert all(row["share_of_capacity"] == pytest.approx(0.25) for row in rows)


def test_dispatch_delay_is_measured_on_tasks_that_found_a_thread_free() -> None:
    def row(created: float, started: float, completed: float) -> dict[str, Any]:
        return {
            "function": "f",
            "status": "completed",
            "created": created,
            "started": started,
            "completed": completed,
        }

    # one thread (per node: calibrate passes one node's threads, since a prefetched message
    # waits on the node that fetched it): the second task queued behind the first; the third
    # found the thread free.
    records = [row(0.0, 0.01, 1.0), row(0.5, 1.01, 2.0), row(3.0, 3.02, 3.5)]
    assert unqueued_waits(records, threads=1, hold=0.0) == pytest.approx([0.01, 0.02])
    assert unqueued_waits(records, threads=2, hold=0.0) == pytest.approx([0.01, 0.51, 0.02])
