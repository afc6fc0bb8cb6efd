"""Prefetch (the workload's `prefetch_per_thread`): each node's consumer of each queue holds up
to that many messages per thread, so a message is bound to a node when it is fetched, not when
a thread frees up, as the runtime's Dramatiq workers do (2 per thread)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulator.model import Outage, RunLength
from simulator.twin import Twin
from tests.simulator.builders import cluster, exp_fn, poisson, trace_workload, workload


def _waits(res: dict[str, Any]) -> dict[str, float]:
    return {p: b["wait"]["max"] for p, b in res["by_priority"].items() if b["completed"]}


def _trace(tmp: Path, rows: list[str], prefetch: int | None) -> Any:
    wl = trace_workload(tmp, rows)
    return wl.model_copy(update={"prefetch_per_thread": prefetch})


def test_a_fetched_message_waits_on_its_busy_node_while_another_node_is_idle(tmp_path: Path) -> None:
    # a (10 s) goes to node 0, b (1 s) to node 1 and ends at 2; c comes at 3. Pooled, c takes
    # node 1's free thread. Prefetched, node 0's consumer has waited longest (its last fetch
    # is the older) and has room: c waits there until a ends at 10.
    rows = ["0,t,f,normal,10", "1,t,f,normal,1", "3,t,f,normal,1"]
    two = cluster(threads=1, nodes=2)
    pooled = Twin(two, _trace(tmp_path, rows, None), RunLength(tasks=3)).run()
    fetched = Twin(two, _trace(tmp_path, rows, 2), RunLength(tasks=3)).run()
    assert _waits(pooled) == {"normal": pytest.approx(0.0)}
    assert _waits(fetched) == {"normal": pytest.approx(7.0)}


def test_a_node_runs_its_most_urgent_fetched_message_first(tmp_path: Path) -> None:
    # One node, one thread, two messages per queue: low and normal fetched while a task runs;
    # critical comes last and still goes first (the worker's in-memory priority queue).
    rows = ["0,t,f,normal,10", "1,t,f,low,1", "2,t,f,normal,1", "3,t,f,critical,1"]
    res = Twin(cluster(threads=1), _trace(tmp_path, rows, 2), RunLength(tasks=4)).run()
    assert _waits(res) == {
        "critical": pytest.approx(7.0),
        "normal": pytest.approx(9.0),
        "low": pytest.approx(11.0),
    }


def test_a_node_at_its_prefetch_limit_leaves_messages_to_the_others(tmp_path: Path) -> None:
    # a (10 s) on node 0, b (1 s) on node 1, ended by 1.5; c comes at 2. With 1 message per
    # thread node 0 is full (the running message counts until acknowledged): c goes to node 1
    # at once. With 2, node 0's consumer has room and has waited longest: c waits for a.
    rows = ["0,t,f,normal,10", "0.5,t,f,normal,1", "2,t,f,normal,1"]
    two = cluster(threads=1, nodes=2)
    one = Twin(two, _trace(tmp_path, rows, 1), RunLength(tasks=3)).run()
    two_each = Twin(two, _trace(tmp_path, rows, 2), RunLength(tasks=3)).run()
    assert _waits(one) == {"normal": pytest.approx(0.0)}
    assert _waits(two_each) == {"normal": pytest.approx(8.0)}


def test_prefetch_waits_longer_than_a_pooled_queue_and_keeps_littles_law() -> None:
    wl = workload({"f": exp_fn(0.2)}, poisson(15.0))
    length = RunLength(tasks=20_000, warmup_tasks=2000)
    two = cluster(threads=2, nodes=2)
    pooled = Twin(two, wl, length, seed=3).run()
    fetched = Twin(two, wl.model_copy(update={"prefetch_per_thread": 2}), length, seed=3).run()
    assert fetched["overall"]["completed"] == fetched["overall"]["accepted"]
    assert fetched["overall"]["wait"]["mean"] > 1.1 * pooled["overall"]["wait"]["mean"]
    assert fetched["littles_law"]["rel_error"] < 0.02


def test_messages_a_dead_node_had_fetched_come_back_when_it_is_noticed() -> None:
    wl = workload({"f": {"service": {"dist": "constant", "value": 1.0}}}, poisson(3.5))
    cfg = cluster(threads=2, nodes=2, heartbeat={"interval_seconds": 1, "timeout_seconds": 3})
    outage = Outage("cpu", 0, at=20.0, down_for=100.0, on_start_within=5.0)
    twin = Twin(cfg, wl.model_copy(update={"prefetch_per_thread": 2}), RunLength(until=60), outages=[outage])
    res = twin.run()
    assert res["overall"]["completed"] == res["overall"]["accepted"] and res["overall"]["unfinished"] == 0
    assert res["by_pool"]["cpu"]["requeued_node_failure"] >= 1
