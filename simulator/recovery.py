"""A worker killed mid-run: the recovery the test-bed measures and the one the twin predicts,
read from the same kind of data (each task's arrival and finish) by the same function.

The figures, all relative to the kill at `at`:

- **throughput before**: completions/s over the `before` seconds ahead of the kill;
- **throughput during**: completions/s over the blind window `[at, at + blind)` (the
  heartbeat timeout: the dead node's tasks wait there until a peer notices it);
- **in-flight recovery**: seconds from the kill until the last task in flight on the killed
  node has finished (re-run elsewhere, or on the restarted node); None if none was;
- **recovery**: seconds from the kill until, after that, the tasks in the system (arrived, not
  finished) are back to their mean over the `before` window: the backlog the outage built
  is gone, so throughput is back to the offered load;
- **lost**: tasks of the killed node that never finished (the runtime must make it 0).

In the twin (`predict_recovery`) the kill is an `Outage`: the node goes down as it starts a
task, its running tasks are handed back when a peer's reaper notices it (simulator/model.py
`node_down`, simulator/heartbeats.py: on the heartbeat phases the bed read at the kill, when
it recorded them), and it comes back empty `down_for` seconds later, as the worker's
supervisor restarts it. The figures count from the twin's own kill moment, as the bed's count
from its SIGKILL.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime.config import ClusterConfig
from simulator.model import Outage, RunLength
from simulator.scaling import at_rate
from simulator.twin import Twin
from simulator.workload import Workload

FIGURES = ("throughput before", "throughput during", "in-flight recovery", "recovery")
STEP = 0.05  # seconds between the backlog's samples


def recovery_figures(
    arrivals: Sequence[float],
    finishes: Sequence[float | None],
    lost_finishes: Sequence[float | None],
    at: float,
    blind: float,
    before: float = 10.0,
) -> dict[str, float | None]:
    """The figures above (None: not recovered within the data) from every task's arrival and
    finish time (None: never finished) and the finish times of the killed node's tasks."""
    arrived = sorted(arrivals)
    done = sorted(f for f in finishes if f is not None)
    before = max(min(before, at - arrived[0]) if arrived else before, STEP)

    def count(times: list[float], lo: float, hi: float) -> int:
        return bisect.bisect_left(times, hi) - bisect.bisect_left(times, lo)

    def in_system(t: float) -> int:
        return bisect.bisect_right(arrived, t) - bisect.bisect_right(done, t)

    lost = sum(1 for f in lost_finishes if f is None)
    back = max((f for f in lost_finishes if f is not None), default=at)
    baseline = statistics.fmean(in_system(t) for t in np.arange(at - before, at, STEP))
    end = max(done[-1] if done else at, back)
    recovered = next((float(t) for t in np.arange(back, end + STEP, STEP) if in_system(t) <= baseline), None)
    return {
        "throughput before": count(done, at - before, at) / before,
        "throughput during": count(done, at, at + blind) / blind if blind > 0 else 0.0,
        "in-flight recovery": back - at if lost_finishes and not lost else None,
        "recovery": recovered - at if recovered is not None and not lost else None,
        "in flight": float(len(lost_finishes)),
        "lost": float(lost),
    }


def completion_series(finishes: Sequence[float | None], at: float, start: float, end: float) -> list[float]:
    """Completions per second in 1-second bins from `at + start` to `at + end` (for the plot)."""
    edges = np.arange(at + start, at + end + 1.0, 1.0)
    counts, _ = np.histogram([f for f in finishes if f is not None], bins=edges)
    return [float(c) for c in counts]


def predict_recovery(
    cluster: ClusterConfig,
    workload: Workload,
    rate: float,
    seconds: float,
    outage: Outage,
    seed: int = 7,
    replications: int = 10,
    hold: float = 0.0,
    window: tuple[float, float] = (-10.0, 30.0),
) -> dict[str, Any]:
    """The twin's figures for the outage at `rate` tasks/s offered for `seconds`: the mean,
    min and max over `replications` runs, and the mean completion series around the kill.

    `hold` (the calibrated thread time per task after `completed_at`, part of each calibrated
    service sample) is taken off each finish, since the store's completion stamp precedes it."""
    scaled = at_rate(workload, rate)
    blind = cluster.heartbeat.timeout_seconds
    runs: list[dict[str, float | None]] = []
    series: list[list[float]] = []
    for rep in range(replications):
        twin = Twin(cluster, scaled, RunLength(until=seconds), seed=seed, replication=rep, outages=[outage])
        twin.model.finished = []
        twin.run()
        rows = twin.model.finished
        lost_ids = {id(task) for task in twin.sources.lost}
        finishes = [end - hold for _, end, _ in rows]
        lost: list[float | None] = [end - hold for _, end, task in rows if id(task) in lost_ids]
        lost += [None] * (len(lost_ids) - len(lost))  # taken down and never finished
        # From the kill itself, as the bed measures: it comes as the node starts a task.
        at = twin.sources.killed_at[0] if twin.sources.killed_at else outage.at
        runs.append(recovery_figures([a for a, _, _ in rows], finishes, lost, at, blind))
        series.append(completion_series(finishes, at, *window))
    return {
        "runs": runs,
        "mean": {name: _mean([r[name] for r in runs]) for name in runs[0]},
        "min": {name: _extreme(min, [r[name] for r in runs]) for name in runs[0]},
        "max": {name: _extreme(max, [r[name] for r in runs]) for name in runs[0]},
        "series": [statistics.fmean(column) for column in zip(*series, strict=True)],
    }


def _mean(values: list[float | None]) -> float | None:
    """The mean, or None if any run did not recover (a mean over the others would flatter it)."""
    return None if any(v is None for v in values) else statistics.fmean(v for v in values if v is not None)


def _extreme(pick: Any, values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return pick(known) if known else None
