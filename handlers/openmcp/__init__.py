"""Handlers of OpenMCP Chain: one module per API tag, on the same runtime as Grey's."""

from __future__ import annotations

from generated.openmcp import interfaces
from handlers.openmcp import auth, tasks

__all__ = ["HANDLERS"]

HANDLERS: dict[str, interfaces.Handler] = interfaces.handler_table(auth=auth, tasks=tasks)
"""operationId → handler; passing the modules lets a type checker hold each to its tag's protocol."""
