"""Handlers of the Orchestrator: one module per API tag, on the same runtime as Grey's."""

from __future__ import annotations

from generated.orchestrator import interfaces
from handlers.orchestrator import system, tasks

__all__ = ["HANDLERS"]

HANDLERS: dict[str, interfaces.Handler] = interfaces.handler_table(system=system, tasks=tasks)
"""operationId → handler; passing the modules lets a type checker hold each to its tag's protocol."""
