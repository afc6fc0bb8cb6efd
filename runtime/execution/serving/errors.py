"""Serving's own errors: no HTTP status, no gRPC code (the handlers map `code` to the API's).

Each carries `code`, the internal ApiError code it becomes, and `details` for the envelope.
"""

from __future__ import annotations

from runtime.execution.errors import CodedError


class ServingError(CodedError):
    """Base of every serving error."""

    code = "internal_error"


class InvalidServingRequest(ServingError):
    """A framework, port or input that can never be valid."""

    code = "invalid_payload"


class FrameworkUnavailable(ServingError):
    """The framework is known but not installed on the node (e.g. vLLM without the package)."""

    code = "resource_unavailable"


class PortConflict(ServingError):
    """The port asked for is taken on that node (by a service or another process)."""

    code = "conflict"


class NoFreePort(ServingError):
    """Every port of the node's serving range is taken."""

    code = "resource_unavailable"


class ServiceNotFound(ServingError):
    code = "not_found"


class NoCapacity(ServingError):
    """No node holding the model has a serving slot to give (every slot busy, none evictable)."""

    code = "resource_unavailable"


class ReplicaFailed(ServingError):
    """The serving process exited or never answered its health check."""

    code = "task_failed"


class ReplicaUnreachable(ServingError):
    """A request to a running replica failed on the network."""

    code = "network_error"
