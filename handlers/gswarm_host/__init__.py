"""Handlers of gswarm Model Host API: one module per API tag (skeletons by `make codegen`)."""

from __future__ import annotations

from generated.gswarm_host import interfaces
from handlers.gswarm_host import data, locations, models, queue, services, serving, system

__all__ = ["HANDLERS"]

HANDLERS: dict[str, interfaces.Handler] = interfaces.handler_table(
    data=data,
    locations=locations,
    models=models,
    queue=queue,
    services=services,
    serving=serving,
    system=system,
)
"""operationId → handler; passing the modules lets a type checker hold each to its tag's protocol."""
