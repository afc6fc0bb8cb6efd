"""Calibration: the twin's inputs measured on the real cluster, each cost modelled as what it is.

From the store's records of a load run (loadtest/bed) the calibration takes

- **service time per function**: `completed_at - started_at` of every completed task, i.e.
  the function's run plus the worker's own per-task work between the two stamps (the start
  and finish transitions); the twin resamples them (`empirical`);
- **worker hold overhead** `hold`: time a worker thread is busy per task *outside* those
  stamps (taking the message, acknowledging it). It is measured where every thread is busy,
  at the capacity probe (offered load past capacity): over the span of the measured submits,
  `hold = (threads x span - time inside the stamps) / tasks completed`, and added to every
  sample, because it holds a thread exactly like the function does (it comes after
  `completed_at`, so the prediction of end-to-end times takes it off again);
- **dispatch delay**: from the gateway's commit of the task to a free worker starting it
  (broker transit, message fetch, the worker's first transition), resampled from the queue
  waits of the tasks that found a thread free (fewer tasks in the system than one node has
  threads when they were submitted: whichever node's consumer fetched the message, one of
  its threads was free), at every measured level but the probe. It holds no
  thread, so the twin models it as a delay before the task joins its queue (the workload's
  `dispatch`), not as service time;
- **prefetch**: not measured but known, the runtime's workers are Dramatiq workers, whose
  consumers fetch up to 2 messages per worker thread ahead from each queue; the message then
  waits on the node that fetched it (the workload's `prefetch_per_thread`).
- **gateway CPU per task**, reported (the gateway's answer time is Locust's submit latency,
  outside the store's timestamps, so it is not part of queue wait or end-to-end).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simulator.workload import Empirical, Workload

FIELDS = ("function", "status", "started", "completed", "execution")

#: Messages a runtime worker's consumer holds per worker thread and queue: Dramatiq's
#: `Worker.queue_prefetch` default, 2 x worker_threads (runtime/execution/workers.py does not
#: set it).
RUNTIME_PREFETCH_PER_THREAD = 2


@dataclass
class Calibration:
    measured_at: str
    threads: int
    capacity: float | None
    hold: float
    dispatch: float  # median
    dispatch_samples: list[float] = field(repr=False)
    service_means: dict[str, float]
    execution_means: dict[str, float]
    samples: dict[str, list[float]] = field(repr=False)
    gateway_cpu_ms_per_task: float | None = None

    def report(self) -> dict[str, Any]:
        data = asdict(self)
        data["samples"] = {name: len(values) for name, values in self.samples.items()}
        data["dispatch_samples"] = len(self.dispatch_samples)
        data["worker_overhead_inside_stamps"] = {
            name: self.service_means[name] - self.execution_means.get(name, self.service_means[name])
            for name in self.service_means
        }
        return data


def service_samples(records: list[dict[str, Any]]) -> dict[str, list[float]]:
    """`completed - started` of the completed tasks, per workload function."""
    found: dict[str, list[float]] = {}
    for r in records:
        if r["status"] == "completed" and r["started"] is not None and r["completed"] is not None:
            found.setdefault(r["function"], []).append(max(0.0, r["completed"] - r["started"]))
    return found


def hold_overhead(records: list[dict[str, Any]], threads: int, warmup_fraction: float = 0.1) -> float:
    """Thread time per completed task not inside its stamps, over a saturated level's span."""
    ordered = sorted(records, key=lambda r: r["created"])
    kept = ordered[int(len(ordered) * warmup_fraction) :]
    if len(kept) < 2:
        return 0.0
    first, last = kept[0]["created"], kept[-1]["created"]
    inside = done = 0.0
    for r in ordered:
        if r["started"] is None or r["completed"] is None:
            continue
        inside += max(0.0, min(r["completed"], last) - max(r["started"], first))
        done += first <= r["completed"] <= last
    return max(0.0, (threads * (last - first) - inside) / done) if done else 0.0


def unqueued_waits(records: list[dict[str, Any]], threads: int, hold: float) -> list[float]:
    """The waits of the tasks that found a thread free: fewer than `threads` (one node's)
    tasks were in the system (submitted, not yet finished with their thread) when they were
    submitted, so whichever node fetched them had one free, and their wait is the dispatch
    delay alone, with no queueing in it."""
    from bisect import bisect_left, bisect_right

    created = sorted(r["created"] for r in records)
    ends = sorted(r["completed"] + hold for r in records if r["completed"] is not None)
    found = []
    for r in records:
        if r["started"] is None:
            continue
        in_system = bisect_left(created, r["created"]) - bisect_right(ends, r["created"])
        if in_system < threads:
            found.append(max(0.0, r["started"] - r["created"]))
    return found


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def calibrate(run: dict[str, Any], levels_records: list[list[dict[str, Any]]]) -> Calibration:
    """The calibration of one load run (its results.json and each level's records, same order)."""
    pool = run["cluster"]["pools"]["cpu"]
    per_node = int(pool["threads_per_node"])
    threads = int(pool["nodes"]) * per_node
    everything = [r for records in levels_records for r in records]
    samples = service_samples(everything)
    if not samples:
        raise ValueError("the load run has no completed task to calibrate from")
    service_means = {name: _mean(values) for name, values in samples.items()}
    execution = {
        name: _mean(
            [r["execution"] for r in everything if r["function"] == name and r["execution"] is not None]
        )
        for name in samples
    }
    capacity, hold = run.get("capacity"), 0.0
    probes = [i for i, lv in enumerate(run["levels"]) if lv.get("probe")]
    if capacity and probes:
        probe_service = _mean(
            [s for values in service_samples(levels_records[probes[0]]).values() for s in values]
        )
        hold = max(0.0, threads / capacity - probe_service)
    levels = [i for i in range(len(run["levels"])) if not run["levels"][i].get("probe")] or [0]
    waits = [w for i in levels for w in unqueued_waits(levels_records[i], per_node, hold)]
    dispatch = statistics.median(waits) if waits else 0.0
    gateway = [
        lv["cpu_percent"].get("gateway-1", 0.0) / 100 * lv["wall_seconds"] / lv["scheduled"]
        for lv in run["levels"]
        if lv.get("scheduled")
    ]
    return Calibration(
        measured_at=run.get("measured_at", "?"),
        threads=threads,
        capacity=capacity,
        hold=hold,
        dispatch=dispatch,
        dispatch_samples=waits,
        service_means=service_means,
        execution_means=execution,
        samples={name: [s + hold for s in values] for name, values in samples.items()},
        gateway_cpu_ms_per_task=1000 * _mean(gateway) if gateway else None,
    )


def calibrated_workload(workload: Workload, calibration: Calibration, samples_dir: Path) -> Workload:
    """The workload with every measured function's service time, and the dispatch delay,
    resampled from what was measured."""
    samples_dir.mkdir(parents=True, exist_ok=True)
    functions = dict(workload.functions)
    for name, values in calibration.samples.items():
        if name not in functions:
            continue
        path = samples_dir / f"{name}.txt"
        path.write_text("".join(f"{v:.6f}\n" for v in values))
        functions[name] = functions[name].model_copy(
            update={"service": Empirical(dist="empirical", path=str(path.resolve()))}
        )
    update: dict[str, Any] = {"functions": functions, "prefetch_per_thread": RUNTIME_PREFETCH_PER_THREAD}
    if calibration.dispatch_samples:
        path = samples_dir / "dispatch.txt"
        path.write_text("".join(f"{v:.6f}\n" for v in calibration.dispatch_samples))
        update["dispatch"] = Empirical(dist="empirical", path=str(path.resolve()))
    return workload.model_copy(update=update)


def write_calibration(
    run: dict[str, Any], workload: Workload, calibration: Calibration, out: Path
) -> dict[str, Path]:
    """calibrated workload and cluster files, and calibration.json, under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    calibrated = calibrated_workload(workload, calibration, out / "samples")
    data = calibrated.model_dump(mode="json", exclude_defaults=True)
    for service in [f.get("service", {}) for f in data.get("functions", {}).values()] + [
        data.get("dispatch") or {}
    ]:
        if service.get("dist") == "empirical":
            service["path"] = str(Path(service["path"]).relative_to(out.resolve()))
    paths = {
        "workload": out / "workload.yaml",
        "cluster": out / "cluster.yaml",
        "calibration": out / "calibration.json",
    }
    paths["workload"].write_text(yaml.safe_dump(data, sort_keys=False))
    cluster = {k: v for k, v in run["cluster"].items()}
    paths["cluster"].write_text(yaml.safe_dump(cluster, sort_keys=False))
    paths["calibration"].write_text(json.dumps(calibration.report(), indent=1))
    return paths
