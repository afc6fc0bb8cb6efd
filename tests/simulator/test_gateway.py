"""The gateway rejects as the API would: 429 rate_limited (the runtime's sliding-window
counter), 503 queue_full, 409 unschedulable for a pool without nodes and for a request no
node could ever hold.  Trace replays make every count exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.model import RunLength
from simulator.twin import Twin
from tests.simulator.builders import cluster, trace_workload


def replay(tmp_path: Path, rows: list[str], cfg: Any, **kw: Any) -> dict[str, Any]:
    wl = trace_workload(tmp_path, rows, **kw)
    return Twin(cfg, wl, RunLength(tasks=len(rows))).run()


def test_submit_rate_limit_rejects_the_excess_with_429(tmp_path: Path) -> None:
    # 150 submits in the first 60 s window with a limit of 100; then 20 two windows later,
    # when nothing of the first window is left in the sliding window
    rows = [f"{i * 0.4:.3f},acme,f,normal,0.001" for i in range(150)]
    rows += [f"{150 + i * 0.1:.3f},acme,f,normal,0.001" for i in range(20)]
    cfg = cluster(threads=4, rate_limits={"submit": 100})
    res = replay(tmp_path, rows, cfg)
    o = res["overall"]
    assert o["rejected_by_reason"]["rate_limited"] == 50
    assert o["rejected_by_status"] == {"429": 50, "503": 0, "409": 0}
    assert o["accepted"] == 120 and o["completed"] == 120
    assert o["rejected_fraction"] == 50 / 170


def test_rate_limit_window_slides_weighting_the_previous_window(tmp_path: Path) -> None:
    """100 accepted in window [0, 60); at t = 90 half of that window still counts (50), so
    only 50 more fit under the limit of 100 (a fixed window would let all 80 through)."""
    rows = [f"{i * 0.3:.1f},acme,f,normal,0.001" for i in range(100)]
    rows += ["90.0,acme,f,normal,0.001"] * 80
    res = replay(tmp_path, rows, cluster(threads=4, rate_limits={"submit": 100}))
    o = res["overall"]
    assert o["accepted"] == 150
    assert o["rejected_by_reason"]["rate_limited"] == 30


def test_rate_limits_are_per_tenant(tmp_path: Path) -> None:
    rows = [f"{i * 0.1:.3f},{'a' if i % 2 else 'b'},f,normal,0.001" for i in range(40)]
    res = replay(tmp_path, rows, cluster(threads=2, rate_limits={"submit": 15}))
    assert res["overall"]["rejected_by_reason"]["rate_limited"] == 2 * (20 - 15)


def test_per_second_submit_quota_also_gives_429(tmp_path: Path) -> None:
    rows = [f"{0.1 * i:.2f},acme,f,normal,0.001" for i in range(8)]  # 8 within one second
    rows += ["1.5,acme,f,normal,0.001"]
    cfg = cluster(threads=2, default_quota={"submit_rate_per_second": 5})
    res = replay(tmp_path, rows, cfg)
    assert res["overall"]["rejected_by_reason"]["rate_limited"] == 3
    assert res["overall"]["accepted"] == 6


def test_queue_depth_quota_rejects_with_503_queue_full(tmp_path: Path) -> None:
    # one slot busy for 100 s; 3 may wait; the other 6 are refused
    rows = [f"{i},acme,f,normal,100" for i in range(10)]
    cfg = cluster(threads=1, default_quota={"max_queue_depth": 3})
    res = replay(tmp_path, rows, cfg)
    o = res["overall"]
    assert o["rejected_by_reason"]["queue_full"] == 6
    assert o["rejected_by_status"]["503"] == 6
    assert o["completed"] == 4


def test_concurrency_quota_counts_running_and_waiting_tasks(tmp_path: Path) -> None:
    rows = [f"{i},acme,f,normal,100" for i in range(10)] + ["5,other,f,normal,1"]
    rows.sort(key=lambda r: float(r.split(",")[0]))
    cfg = cluster(threads=1, default_quota={"max_concurrent_tasks": 2})
    res = replay(tmp_path, rows, cfg)
    o = res["overall"]
    assert o["rejected_by_reason"]["queue_full"] == 8  # acme: 1 running + 1 waiting
    assert o["accepted"] == 3  # the other tenant has its own quota


def test_requests_no_node_can_hold_are_rejected_not_queued(tmp_path: Path) -> None:
    rows = ["0,a,big,normal,1", "1,a,gpu,normal,1", "2,a,small,normal,1"]
    functions = {
        "big": {"service": {"dist": "constant", "value": 1}, "resources": {"cpu": 64}},
        "gpu": {"service": {"dist": "constant", "value": 1}, "resources": {"gpu": 1}},
        "small": {"service": {"dist": "constant", "value": 1}},
    }
    res = replay(tmp_path, rows, cluster(threads=8), functions=functions)
    o = res["overall"]
    assert o["rejected_by_reason"]["unschedulable"] == 1  # 64 cores > 8 per node: 409
    assert o["rejected_by_reason"]["no_capacity"] == 1  # the gpu pool has no nodes: 409
    assert o["rejected_by_status"] == {"429": 0, "503": 0, "409": 2}
    assert o["completed"] == 1
