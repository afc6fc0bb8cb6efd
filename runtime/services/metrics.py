"""Prometheus metrics of this process (served by `GET /metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "grey_requests_total",
            "API calls by operation, transport and outcome code",
            ["operation", "transport", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "grey_request_seconds",
            "API call latency by operation and transport",
            ["operation", "transport"],
            registry=self.registry,
        )
        self.tasks_submitted = Counter("tasks_submitted_total", "Tasks accepted", registry=self.registry)

    def observe(self, operation: str, transport: str, code: str, seconds: float) -> None:
        """One finished API call; `code` is `ok` or the error code."""
        self.requests.labels(operation, transport, code).inc()
        self.latency.labels(operation, transport).observe(seconds)

    def render(self) -> str:
        return generate_latest(self.registry).decode()
