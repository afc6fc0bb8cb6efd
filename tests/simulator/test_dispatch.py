"""Dispatch mirrors the runtime: strict non-preemptive priority (or fifo), a slot's thread
waiting at its node's resource gate, retries with jittered backoff, timeouts, node failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulator.model import RunLength
from simulator.twin import Twin
from tests.simulator.builders import cluster, exp_fn, poisson, trace_workload, workload

CONST10 = {"service": {"dist": "constant", "value": 10}}

# t=0 a low task takes the only slot for 10 s; then low A, normal B, critical C, high D arrive.
ORDER_ROWS = ["0,t,f,low,10", "1,t,f,low,10", "2,t,f,normal,10", "3,t,f,critical,10", "4,t,f,high,10"]


def waits_by_priority(res: dict[str, Any]) -> dict[str, float]:
    return {p: b["wait"]["mean"] for p, b in res["by_priority"].items() if b["completed"]}


def test_strict_policy_serves_highest_priority_first_without_preemption(tmp_path: Path) -> None:
    res = Twin(cluster(threads=1), trace_workload(tmp_path, ORDER_ROWS), RunLength(tasks=5)).run()
    # C starts at 10, D at 20, B at 30, A at 40; the running low task is not preempted
    assert waits_by_priority(res) == pytest.approx(
        {"critical": 7.0, "high": 16.0, "normal": 28.0, "low": (0.0 + 39.0) / 2}
    )
    assert res["by_priority"]["low"]["e2e"]["p50"] == pytest.approx(10.0, rel=0.01)


def test_fifo_policy_serves_in_arrival_order(tmp_path: Path) -> None:
    res = Twin(
        cluster(threads=1, policy="fifo"), trace_workload(tmp_path, ORDER_ROWS), RunLength(tasks=5)
    ).run()
    assert waits_by_priority(res) == pytest.approx(
        {"low": (0.0 + 9.0) / 2, "normal": 18.0, "critical": 27.0, "high": 36.0}
    )


def gpu_run(tmp_path: Path, rows: list[str], nodes: int, threads: int) -> dict[str, Any]:
    functions = {n: {**CONST10, "resources": {"gpu": g}} for n, g in (("x", 3), ("y", 2), ("z", 1))}
    gpu = {"nodes": nodes, "threads_per_node": threads, "gpus_per_node": 4}
    cfg = cluster(threads=1, nodes=0, pools={"gpu": gpu})
    return Twin(cfg, trace_workload(tmp_path, rows, functions), RunLength(tasks=len(rows))).run()


GPU_ROWS = ["0,t,x,normal,10", "1,t,y,normal,10", "2,t,z,normal,10"]


def test_task_too_big_for_free_gpus_waits_at_its_node_while_others_pass(tmp_path: Path) -> None:
    """X takes 3 of 4 GPUs; a free thread takes Y (2 GPUs) and waits with it at the node's
    resource gate until X ends; Z (1 GPU) gets another thread and starts at once."""
    res = gpu_run(tmp_path, GPU_ROWS, nodes=1, threads=4)["by_pool"]["gpu"]
    assert res["completed"] == 3
    assert res["wait"]["max"] == pytest.approx(9.0)  # Y: 1 -> 10
    assert res["wait"]["mean"] == pytest.approx((0 + 9 + 0) / 3)


def test_task_waiting_at_the_gate_holds_its_thread(tmp_path: Path) -> None:
    """With 2 threads, X runs and Y holds the other thread at the gate: Z has no thread until
    X ends at 10, though a GPU is free all along (the runtime's ResourceGate does the same)."""
    res = gpu_run(tmp_path, GPU_ROWS, nodes=1, threads=2)["by_pool"]["gpu"]
    assert res["wait"]["mean"] == pytest.approx((0 + 9 + 8) / 3)
    assert res["utilization"] < 0.75  # a held thread is not a busy one


def test_idle_threads_take_turns_across_nodes(tmp_path: Path) -> None:
    """Two nodes: after X went to the first, the next task goes to the other one."""
    rows = ["0,t,x,normal,10", "1,t,x,normal,10"]
    res = gpu_run(tmp_path, rows, nodes=2, threads=2)["by_pool"]["gpu"]
    assert res["wait"]["max"] == 0.0


def test_cpu_cores_limit_concurrency_below_the_thread_count(tmp_path: Path) -> None:
    functions = {"f": {**CONST10, "resources": {"cpu": 2}}}
    rows = ["0,t,f,normal,10" for _ in range(4)]
    cfg = cluster(pools={"cpu": {"nodes": 1, "threads_per_node": 4, "cpu_cores_per_node": 4}})
    res = Twin(cfg, trace_workload(tmp_path, rows, functions), RunLength(tasks=4)).run()
    assert res["overall"]["wait"]["max"] == pytest.approx(10.0)  # only 2 run at once
    assert res["overall"]["wait"]["mean"] == pytest.approx(5.0)


def test_transient_failures_retry_three_times_with_jittered_exponential_backoff() -> None:
    fn = {"service": {"dist": "constant", "value": 0.0}, "failure_probability": 1.0}
    wl = workload({"f": fn}, poisson(0.01))
    res = Twin(cluster(threads=4), wl, RunLength(tasks=400)).run()
    o = res["overall"]
    assert o["failed"] == 400 and o["completed"] == 0
    assert o["retries"] == 400 * 3  # 1 attempt + 3 retries each
    # Little's-law W is the mean sojourn of every finished task: the backoffs
    # (1 + 2 + 4) s x U(1, 1.25), as the runtime's executor draws them
    assert res["littles_law"]["W"] == pytest.approx(7 * 1.125, rel=0.01)
    capped = Twin(cluster(threads=4, retry={"backoff_max_seconds": 1.5}), wl, RunLength(tasks=400)).run()
    assert capped["littles_law"]["W"] == pytest.approx(1.125 + 1.5 + 1.5, rel=0.01)


def test_partial_failure_rate_fails_only_tasks_whose_four_attempts_all_fail() -> None:
    wl = workload({"f": exp_fn(0.01, failure_probability=0.5)}, poisson(1.0))
    res = Twin(cluster(threads=4), wl, RunLength(tasks=40_000, warmup_tasks=0)).run()
    o = res["overall"]
    assert o["failed"] / o["accepted"] == pytest.approx(0.5**4, rel=0.1)
    # expected retries per task: 0.5 + 0.25 + 0.125
    assert o["retries"] / o["accepted"] == pytest.approx(0.875, rel=0.03)


def test_timeouts_stop_the_attempt_and_are_not_retried_by_default() -> None:
    fn = {"service": {"dist": "constant", "value": 10.0}, "timeout_seconds": 4.0}
    wl = workload({"f": fn}, poisson(0.001))
    res = Twin(cluster(threads=1), wl, RunLength(tasks=5)).run()
    assert res["overall"]["timed_out"] == 5 and res["overall"]["retries"] == 0
    assert res["littles_law"]["W"] == pytest.approx(4.0)
    retrying = cluster(threads=1, retry={"retry_on_timeout": True})
    res = Twin(retrying, wl, RunLength(tasks=200)).run()
    assert res["overall"]["timed_out"] == 200 and res["overall"]["retries"] == 600
    assert res["littles_law"]["W"] == pytest.approx(4 * 4.0 + 7 * 1.125, rel=0.01)


def test_node_failure_requeues_running_tasks_after_the_heartbeat_timeout() -> None:
    """Every accepted task still completes; lost work and detection delay show as latency."""
    base = {"nodes": 4, "threads_per_node": 2}
    wl = workload({"f": exp_fn(5.0)}, poisson(0.6))
    length = RunLength(until=20_000, warmup_time=1000)
    steady = Twin(cluster(pools={"cpu": base}), wl, length).run()
    failing_cfg = cluster(
        pools={"cpu": {**base, "failures": {"mtbf_seconds": 500, "mttr_seconds": 100}}},
        heartbeat={"timeout_seconds": 30},
    )
    failing = Twin(failing_cfg, wl, length).run()
    f = failing["overall"]
    assert failing["by_pool"]["cpu"]["requeued_node_failure"] > 50
    assert f["completed"] == f["accepted"] and f["unfinished"] == 0
    assert f["e2e"]["mean"] > steady["overall"]["e2e"]["mean"] * 1.2
    assert failing["littles_law"]["rel_error"] < 0.03
