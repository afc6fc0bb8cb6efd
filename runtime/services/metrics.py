"""Prometheus metrics of this process (served by `GET /metrics` of every API that has it).

Calls and submissions are counted here, by API; task outcomes are counted by the executor
that ran them (`runtime.execution.metrics`), whose collectors this registry includes.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from runtime.execution.metrics import TASK_METRICS


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "grey_requests_total",
            "API calls by API, operation, transport and outcome code",
            ["api", "operation", "transport", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "grey_request_seconds",
            "API call latency by API, operation and transport",
            ["api", "operation", "transport"],
            registry=self.registry,
        )
        self.tasks_submitted = Counter(
            "tasks_submitted_total",
            "Tasks accepted, by the API that submitted them",
            ["api"],
            registry=self.registry,
        )
        for collector in TASK_METRICS.collectors():
            self.registry.register(collector)
        # The labelled children, looked up once per label set (`labels()` takes a lock and
        # checks its arguments on every call); never removed, as the registry keeps them too.
        self._calls: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
        self._submits: dict[str, Any] = {}

    def observe(self, api: str, operation: str, transport: str, code: str, seconds: float) -> None:
        """One finished API call; `code` is `ok` or the (internal) error code."""
        key = (api, operation, transport, code)
        children = self._calls.get(key)
        if children is None:
            children = self._calls[key] = (
                self.requests.labels(api, operation, transport, code),
                self.latency.labels(api, operation, transport),
            )
        children[0].inc()
        children[1].observe(seconds)

    def submitted(self, api: str) -> None:
        child = self._submits.get(api)
        if child is None:
            child = self._submits[api] = self.tasks_submitted.labels(api)
        child.inc()

    def estimated_execution_ms(self, api: str) -> int | None:
        """The median execution time of the API's recent tasks in this process, if any ran."""
        return TASK_METRICS.execution_times.median(api)

    def render(self) -> str:
        return generate_latest(self.registry).decode()
