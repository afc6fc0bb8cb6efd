"""What the store recorded about one load level's tasks, and the figures drawn from it.

The store's timestamps are the truth the twin is compared with: queue wait is
`started_at - created_at` (submit accepted → first start), end-to-end is
`completed_at - created_at`, service is `completed_at - started_at`; the worker's own
`execution_time_ms` (the function alone) is kept beside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from runtime.config import PRIORITIES

QUANTILES = (50, 95, 99)


@dataclass(frozen=True)
class TaskRecord:
    function: str
    priority: str
    status: str
    created: float  # epoch seconds
    started: float | None
    completed: float | None
    execution: float | None  # seconds the function ran (the worker's execution_time_ms)
    task_id: str | None = None  # (absent from runs recorded before it was kept)

    @property
    def wait(self) -> float | None:
        return None if self.started is None else self.started - self.created

    @property
    def e2e(self) -> float | None:
        return None if self.completed is None else self.completed - self.created

    @property
    def service(self) -> float | None:
        if self.started is None or self.completed is None:
            return None
        return self.completed - self.started


def read_records(engine: Any, labels: dict[str, str]) -> list[TaskRecord]:
    """The tasks carrying every one of `labels` (the level's run id and number)."""
    from sqlalchemy import select

    from runtime.store.schema import tasks

    columns = [tasks.c[name] for name in ("priority", "status", "labels", "created_at", "started_at")]
    columns += [tasks.c.completed_at, tasks.c.execution_time_ms, tasks.c.task_id]
    stmt = select(*columns).where(tasks.c.created_at.is_not(None))
    found = []
    with engine.connect() as conn:
        for priority, status, task_labels, created, started, completed, execution_ms, task_id in conn.execute(
            stmt
        ):
            task_labels = task_labels or {}
            if any(task_labels.get(key) != value for key, value in labels.items()):
                continue
            found.append(
                TaskRecord(
                    function=task_labels.get("fn", "?"),
                    priority=priority,
                    status=status,
                    created=created.timestamp(),
                    started=started.timestamp() if started else None,
                    completed=completed.timestamp() if completed else None,
                    execution=execution_ms / 1000 if execution_ms is not None else None,
                    task_id=task_id,
                )
            )
    found.sort(key=lambda r: r.created)
    return found


def records_to_json(records: list[TaskRecord]) -> list[dict[str, Any]]:
    return [asdict(r) for r in records]


def records_from_json(rows: list[dict[str, Any]]) -> list[TaskRecord]:
    return [TaskRecord(**row) for row in rows]


def summary(values: list[float]) -> dict[str, float]:
    """count, mean and the p50/p95/p99 of some seconds (zeros when there are none)."""
    if not values:
        return {"count": 0, "mean": 0.0, **{f"p{q}": 0.0 for q in QUANTILES}}
    array = np.asarray(values, dtype=float)
    quantiles = np.percentile(array, QUANTILES)
    return {"count": len(values), "mean": float(array.mean())} | {
        f"p{q}": float(v) for q, v in zip(QUANTILES, quantiles, strict=True)
    }


def measured(records: list[TaskRecord], warmup_fraction: float = 0.1) -> list[TaskRecord]:
    """The records after the warm-up: the first `warmup_fraction` of the submits are left out,
    as the twin leaves out the first 10 % of its run."""
    return records[int(len(records) * warmup_fraction) :]


def figures(records: list[TaskRecord], warmup_fraction: float = 0.1) -> dict[str, Any]:
    """Throughput, waits and end-to-end times overall and per priority, as the twin reports them.

    Throughput is the tasks started inside the span of the measured submits divided by that
    span: at a load the cluster keeps up with it equals the offered load, past capacity it is
    the rate threads come free. Starts rather than completions, so that a short span does not
    miss the tasks still running at its end (a start lags its submit by the wait only)."""
    kept = measured(records, warmup_fraction)
    if len(kept) < 2:
        return {"tasks": len(records), "measured": len(kept), "throughput": 0.0}
    first, last = kept[0].created, kept[-1].created
    span = last - first
    started_inside = sum(1 for r in records if r.started is not None and first <= r.started <= last)

    def block(rows: list[TaskRecord]) -> dict[str, Any]:
        return {
            "measured": len(rows),
            "completed": sum(1 for r in rows if r.status == "completed"),
            "wait": summary([w for r in rows if (w := r.wait) is not None]),
            "e2e": summary([e for r in rows if r.status == "completed" and (e := r.e2e) is not None]),
            "service": summary([s for r in rows if (s := r.service) is not None]),
            "execution": summary([x for r in rows if (x := r.execution) is not None]),
        }

    by_priority = {p: block(rows) for p in PRIORITIES if (rows := [r for r in kept if r.priority == p])}
    return {
        "tasks": len(records),
        "offered": (len(kept) - 1) / span if span > 0 else 0.0,
        "throughput": started_inside / span if span > 0 else 0.0,
        "unfinished": sum(1 for r in records if r.status in ("pending", "running")),
        "failed": sum(1 for r in records if r.status not in ("pending", "running", "completed")),
        "overall": block(kept),
        "by_priority": by_priority,
    }
