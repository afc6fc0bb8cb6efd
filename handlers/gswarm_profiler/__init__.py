"""Handlers of gswarm Profiler API: one module per API tag (written once by `make codegen`, then by hand)."""

from __future__ import annotations

from generated.gswarm_profiler import interfaces
from handlers.gswarm_profiler import profiler

__all__ = ["HANDLERS"]

HANDLERS: dict[str, interfaces.Handler] = interfaces.handler_table(
    profiler=profiler,
)
"""operationId → handler; passing the modules lets a type checker hold each to its tag's protocol."""
