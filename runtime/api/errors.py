"""One error model for both transports.

A handler raises `ApiError(code, message, details)`. The REST adapter turns it into the HTTP
status and Grey Distributed's error envelope; the gRPC adapter into the canonical gRPC status
(grpc-gateway's mapping) with the same code in the `grey-error-code` trailing metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grpclib.const import Status

from runtime.api.envelope import error_body


@dataclass(frozen=True, slots=True)
class ErrorKind:
    http_status: int
    grpc_status: Status


ERRORS: dict[str, ErrorKind] = {
    "bad_request": ErrorKind(400, Status.INVALID_ARGUMENT),
    "invalid_payload": ErrorKind(400, Status.INVALID_ARGUMENT),
    "invalid_parameter": ErrorKind(400, Status.INVALID_ARGUMENT),
    "unauthorized": ErrorKind(401, Status.UNAUTHENTICATED),
    "forbidden": ErrorKind(403, Status.PERMISSION_DENIED),
    "not_found": ErrorKind(404, Status.NOT_FOUND),
    "task_not_found": ErrorKind(404, Status.NOT_FOUND),
    "worker_not_found": ErrorKind(404, Status.NOT_FOUND),
    "model_not_found": ErrorKind(404, Status.NOT_FOUND),
    "method_not_allowed": ErrorKind(405, Status.UNIMPLEMENTED),
    "conflict": ErrorKind(409, Status.ABORTED),
    "duplicate_task": ErrorKind(409, Status.ALREADY_EXISTS),
    "task_not_cancellable": ErrorKind(409, Status.ABORTED),
    "result_not_ready": ErrorKind(409, Status.ABORTED),
    "unschedulable": ErrorKind(409, Status.ABORTED),
    "resource_unavailable": ErrorKind(409, Status.RESOURCE_EXHAUSTED),
    "dependency_failed": ErrorKind(409, Status.FAILED_PRECONDITION),
    "task_failed": ErrorKind(409, Status.ABORTED),
    "payload_too_large": ErrorKind(413, Status.RESOURCE_EXHAUSTED),
    "unsupported_media_type": ErrorKind(415, Status.INVALID_ARGUMENT),
    "unprocessable": ErrorKind(422, Status.INVALID_ARGUMENT),
    "rate_limited": ErrorKind(429, Status.RESOURCE_EXHAUSTED),
    "internal_error": ErrorKind(500, Status.INTERNAL),
    "not_implemented": ErrorKind(501, Status.UNIMPLEMENTED),
    "network_error": ErrorKind(502, Status.UNAVAILABLE),
    "service_unavailable": ErrorKind(503, Status.UNAVAILABLE),
    "queue_full": ErrorKind(503, Status.UNAVAILABLE),
}


class ApiError(Exception):
    """The one exception handlers raise for an answer that is not a success."""

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if code not in ERRORS:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    @property
    def kind(self) -> ErrorKind:
        return ERRORS[self.code]

    @classmethod
    def not_implemented(cls, operation_id: str) -> ApiError:
        return cls(
            "not_implemented",
            f"{operation_id} is in the contract but not built yet",
            {"operation_id": operation_id},
        )

    @classmethod
    def task_not_found(cls, task_id: str) -> ApiError:
        return cls("task_not_found", f"Task {task_id} does not exist", {"task_id": task_id})

    def envelope(self, request_id: str, code: str | None = None, wrapped: bool = False) -> dict[str, Any]:
        """The error body every API uses; `code` is the API's own word for `self.code`.
        `wrapped`: inside `{success: false, data: null, error}` (`x-grey-envelope` APIs)."""
        error = {
            "code": code or self.code,
            "message": self.message,
            "details": self.details,
            "request_id": request_id,
        }
        return error_body(error) if wrapped else {"error": error}
