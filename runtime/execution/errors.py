"""What execution refuses, in its own words; the gateway maps each to an API's error code.

Each error carries a message for people and `details` for programs. None of them names an
HTTP status or a gRPC code: that is the gateway's vocabulary (runtime.gateway.errors).
"""

from __future__ import annotations

from typing import Any

import dramatiq.errors


class ExecutionError(Exception):
    """Base of the refusals execution answers with."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class CodedError(ExecutionError):
    """An error that names the internal API code it becomes (`code`), so a subsystem with many
    refusals (placement, serving) needs no table in the gateway: it maps `code` as it is."""

    code = "internal_error"


class InvalidPayload(ExecutionError):
    """The task could never run as submitted: unknown function, data that does not fit, ..."""


class Unschedulable(ExecutionError):
    """No pool or node of the cluster as it is can take the task (adding one would)."""


class NotSent(ExecutionError):
    """Stored as pending, but the broker did not take its message; recovery sends it later."""


def broker_unavailable(error: BaseException) -> bool:
    """True for a broker that cannot be reached now (Redis, RabbitMQ, or Dramatiq's word for
    either): worth waiting for, never a reason to drop work or answer 500."""
    if isinstance(error, dramatiq.errors.BrokerConnectionError | ConnectionError | TimeoutError):
        return True
    # By name, so that neither client library need be imported; subclasses too (redis's
    # BusyLoadingError while a restarted server loads, pika's StreamLostError...).
    for kind in type(error).__mro__:
        module = kind.__module__
        if module.startswith("redis") and kind.__name__ in ("ConnectionError", "TimeoutError"):
            return True
        if module.startswith("pika") and "Connection" in kind.__name__:
            return True
    return False
