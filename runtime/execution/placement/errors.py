"""The placement engine's own errors: no HTTP status, no gRPC code (the gateway maps them).

Each carries `code`, the internal ApiError code it becomes (runtime/gateway/errors.py or the
gswarm handlers map it), and `details` for the envelope. `transient` tells the executor
whether a task that raised it is worth retrying (a network failure is; a full device is not).
"""

from __future__ import annotations

from runtime.execution.errors import CodedError


class PlacementError(CodedError):
    """Base of every placement error."""

    code = "task_failed"
    transient = False


class InvalidPlacementRequest(PlacementError):
    """A name, device or source that can never be valid (bad characters, traversal...)."""

    code = "invalid_payload"


class ModelNotFound(PlacementError):
    code = "model_not_found"


class ChunkNotFound(PlacementError):
    code = "not_found"


class NodeNotFound(PlacementError):
    code = "not_found"


class DeviceNotFound(PlacementError):
    code = "not_found"


class NotOnDevice(PlacementError):
    """The model or chunk has no complete copy on the source device asked for."""

    code = "not_found"


class ResourceUnavailable(PlacementError):
    """The target device has not got the free bytes: nothing was moved, the source is intact."""

    code = "resource_unavailable"


class PlacementConflict(PlacementError):
    """Registered twice, or in use (services running, chunk referenced) without `force`."""

    code = "conflict"


class ChecksumMismatch(PlacementError):
    """The bytes' SHA-256 is not the one expected: they were discarded."""

    code = "task_failed"


class SourceNotAllowed(PlacementError):
    """A `file://` source outside GREY_PLACEMENT_FILE_ROOTS, or a scheme not served."""

    code = "invalid_payload"


class NetworkFailure(PlacementError):
    """A download or a cross-node read failed on the network (worth retrying)."""

    code = "network_error"
    transient = True
