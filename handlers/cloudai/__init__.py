"""Handlers of CloudAI API: one module per API tag (written once by `make codegen`, then by hand)."""

from __future__ import annotations

from generated.cloudai import interfaces
from handlers.cloudai import cluster, tasks, workers

__all__ = ["HANDLERS"]

HANDLERS: dict[str, interfaces.Handler] = interfaces.handler_table(
    cluster=cluster,
    tasks=tasks,
    workers=workers,
)
"""operationId → handler; passing the modules lets a type checker hold each to its tag's protocol."""
