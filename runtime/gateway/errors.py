"""The one place where the layers' own errors become the API's error codes.

Execution, the store's callers and the services below raise errors in their own words
(`InvalidPayload`, `Unschedulable`, `InvalidCredentials`, `RateLimited`, ...); both
transports answer every failure through `as_api_error`, so REST and gRPC agree.
"""

from __future__ import annotations

import logging

from runtime.api.errors import ApiError
from runtime.execution.errors import (
    CodedError,
    ExecutionError,
    InvalidPayload,
    NotSent,
    Unschedulable,
    broker_unavailable,
)
from runtime.services.auth import InvalidCredentials
from runtime.services.ratelimit import RateLimited
from runtime.services.streams import TooManyStreams
from runtime.services.tasks import TaskNotFound
from runtime.services.workers import WorkerNotFound
from runtime.store.errors import QueueFull
from runtime.store.errors import is_unavailable as store_unavailable
from runtime.store.placement import ModelExists

#: What a client is told to wait when the store or broker is down.
RETRY_AFTER_SECONDS = 5
#: ... and when its tenant's queue is full (tasks finish; the limit frees up soon).
QUEUE_FULL_RETRY_AFTER_SECONDS = 1

logger = logging.getLogger("grey.gateway")

EXECUTION_CODES: dict[type[ExecutionError], str] = {
    InvalidPayload: "invalid_payload",
    Unschedulable: "unschedulable",
    NotSent: "service_unavailable",
}


def as_api_error(error: Exception) -> ApiError:
    """The answer for `error`; anything unforeseen is logged and answered `internal_error`."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, CodedError):  # placement, serving: each error names its code
        return ApiError(error.code, error.message, error.details)
    if isinstance(error, ExecutionError):
        answer = ApiError(EXECUTION_CODES[type(error)], error.message, error.details)
        if isinstance(error, NotSent):
            answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return answer
    if isinstance(error, TaskNotFound):
        return ApiError.task_not_found(error.name)
    if isinstance(error, WorkerNotFound):
        return ApiError("worker_not_found", str(error), {"worker_id": error.node_id})
    if isinstance(error, QueueFull):
        return ApiError(
            "queue_full",
            f"Queue at capacity: the tenant has {error.depth} unfinished tasks, its max_queue_depth "
            f"is {error.limit}; retry once some have finished",
            {
                "limit": error.limit,
                "depth": error.depth,
                "quota": "max_queue_depth",
                "retry_after_seconds": QUEUE_FULL_RETRY_AFTER_SECONDS,
            },
            headers={"Retry-After": str(QUEUE_FULL_RETRY_AFTER_SECONDS)},
        )
    if isinstance(error, ModelExists):
        return ApiError("conflict", str(error), {"model_name": error.name})
    if isinstance(error, TooManyStreams):
        return ApiError("rate_limited", str(error), {"limit": error.limit, "bucket": "streams"})
    if store_unavailable(error) or broker_unavailable(error):
        what = "store" if store_unavailable(error) else "broker"
        logger.warning("%s unavailable: %s", what, type(error).__name__)
        return ApiError(
            "service_unavailable",
            f"The {what} is unavailable right now; retry later",
            {"retry_after_seconds": RETRY_AFTER_SECONDS},
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(error, InvalidCredentials):
        return ApiError("unauthorized", str(error))
    if isinstance(error, RateLimited):
        return ApiError(
            "rate_limited",
            str(error),
            {
                "limit": error.window.limit,
                "window_seconds": error.window_seconds,
                "bucket": error.bucket,
                "retry_after_seconds": error.retry_after,  # gRPC has no Retry-After header
            },
            headers={**error.window.headers(), "Retry-After": str(error.retry_after)},
        )
    logger.exception("unhandled error", exc_info=error)
    return ApiError("internal_error", "Internal error; the request id identifies it in the logs")
