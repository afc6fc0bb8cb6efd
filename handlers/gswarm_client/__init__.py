"""Handlers of gswarm Model Client API: one module per API tag (skeletons by `make codegen`)."""

from __future__ import annotations

from generated.gswarm_client import interfaces
from handlers.gswarm_client import models, resources, services

__all__ = ["HANDLERS"]

HANDLERS: dict[str, interfaces.Handler] = interfaces.handler_table(
    models=models,
    resources=resources,
    services=services,
)
"""operationId → handler; passing the modules lets a type checker hold each to its tag's protocol."""
