"""Handlers of Grey Distributed, the primary contract: one module per API tag."""

from __future__ import annotations

from generated.grey import interfaces
from handlers.grey import auth, cluster, governance, security, system, tasks, webhooks

__all__ = ["HANDLERS"]

HANDLERS: dict[str, interfaces.Handler] = interfaces.handler_table(
    auth=auth,
    cluster=cluster,
    governance=governance,
    security=security,
    system=system,
    tasks=tasks,
    webhooks=webhooks,
)
"""operationId → handler; passing the modules lets a type checker hold each to its tag's protocol."""
