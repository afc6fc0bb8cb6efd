"""Task outcome metrics of this process, labelled by the API that submitted the task.

The executor records every finished task here; the gateway's `/metrics` registry includes
these collectors, so the embedded default shows them next to the submissions, and each
`grey worker` process counts what it ran (Prometheus sums across processes).

`task_execution_time_ms` is a summary with quantiles, as the Orchestrator's reference
shows it: prometheus_client's own Summary has no quantiles, so they are computed at scrape
time over each API's last `WINDOW` executions.
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from collections.abc import Iterator

from prometheus_client import Counter
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

#: Executions per API the quantiles are computed over.
WINDOW = 1024
QUANTILES = (0.5, 0.95, 0.99)


class ExecutionTimes(Collector):
    """`task_execution_time_ms{api, quantile}` plus `_count` and `_sum`, per API."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recent: dict[str, deque[int]] = {}
        self._count: dict[str, int] = {}
        self._sum: dict[str, int] = {}

    def observe(self, api: str, milliseconds: int) -> None:
        with self._lock:
            self._recent.setdefault(api, deque(maxlen=WINDOW)).append(milliseconds)
            self._count[api] = self._count.get(api, 0) + 1
            self._sum[api] = self._sum.get(api, 0) + milliseconds

    def median(self, api: str) -> int | None:
        """The median of the API's recent executions; None before the first."""
        with self._lock:
            recent = list(self._recent.get(api, ()))
        return round(statistics.median(recent)) if recent else None

    def collect(self) -> Iterator[Metric]:
        metric = Metric("task_execution_time_ms", "Task execution time in milliseconds", "summary")
        with self._lock:
            snapshot = {
                api: (sorted(values), self._count[api], self._sum[api])
                for api, values in self._recent.items()
            }
        for api, (values, count, total) in sorted(snapshot.items()):
            for quantile in QUANTILES:
                index = min(len(values) - 1, max(0, round(quantile * len(values)) - 1))
                metric.add_sample(
                    "task_execution_time_ms", {"api": api, "quantile": str(quantile)}, float(values[index])
                )
            metric.add_sample("task_execution_time_ms_count", {"api": api}, float(count))
            metric.add_sample("task_execution_time_ms_sum", {"api": api}, float(total))
        yield metric


class TaskMetrics:
    """The collectors; registered in no registry of their own (see `collectors`)."""

    def __init__(self) -> None:
        self.completed = Counter(
            "tasks_completed_total", "Tasks that completed successfully", ["api"], registry=None
        )
        self.finished_badly = Counter(
            "tasks_unsuccessful_total",
            "Tasks that ended failed, cancelled or timed out",
            ["api", "status"],
            registry=None,
        )
        self.execution_times = ExecutionTimes()

    def finished(self, api: str, status: str, execution_ms: int | None) -> None:
        if status == "completed":
            self.completed.labels(api).inc()
        else:
            self.finished_badly.labels(api, status).inc()
        if execution_ms is not None:
            self.execution_times.observe(api, execution_ms)

    def collectors(self) -> tuple[Collector, ...]:
        return (self.completed, self.finished_badly, self.execution_times)


TASK_METRICS = TaskMetrics()
"""This process's task outcomes (one per process, as its executor is)."""
