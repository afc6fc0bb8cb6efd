"""The Orchestrator's task operations: submit, status, stream, cancel.

`task_type` names a pipeline of agents (runtime.execution.pipeline's registry) that runs
as one Grey `pipeline` task in `execution_mode` (the pipeline's default when absent); the
client's `task_id` is stored as the task's idempotency key, unique per tenant.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

from generated.orchestrator import models
from handlers.orchestrator.views import STATUS, name_of, status_response, update
from runtime.api.context import RequestContext
from runtime.api.errors import ApiError
from runtime.execution.pipeline import get_pipeline, pipeline_names
from runtime.execution.submission import check_payload
from runtime.services import tasks as task_service
from runtime.store import DuplicateIdempotencyKey, NewTask, TaskNotCancellable, TaskRecord


def grey_priority(priority: int) -> str:
    """0–10, higher first: 0–2 low, 3–5 normal, 6–8 high, 9–10 critical."""
    return "low" if priority <= 2 else "normal" if priority <= 5 else "high" if priority <= 8 else "critical"


def _new_task(request: models.SubmitTaskInput, ctx: RequestContext) -> NewTask:
    pipeline = get_pipeline(request.task_type)
    if pipeline is None:
        raise ApiError(
            "invalid_payload",
            f"Unknown task_type {request.task_type!r}; this orchestrator runs {', '.join(pipeline_names())}",
            {"field": "task_type"},
        )
    inputs = [item.model_dump(exclude_none=True) for item in request.inputs or []]
    metadata = dict(request.metadata or {})
    payload = {
        "pipeline": request.task_type,
        "mode": request.execution_mode or pipeline.default_mode,
        "data": {"inputs": inputs, "metadata": metadata},
    }
    check_payload("pipeline", payload, None)  # an unavailable agent: Unschedulable (AGENT_UNAVAILABLE)
    return NewTask(
        api=ctx.api,
        tenant_id=ctx.tenant_id,
        type="pipeline",
        payload=payload,
        priority=grey_priority(request.priority),
        timeout_seconds=max(1, math.ceil(request.timeout_ms / 1000)),
        idempotency_key=request.task_id,
        labels=metadata,
    )


async def submit_task(request: models.SubmitTaskInput, ctx: RequestContext) -> models.TaskResponse:
    try:
        task = await task_service.submit(ctx.services, _new_task(request, ctx))
    except DuplicateIdempotencyKey:
        raise ApiError(
            "duplicate_task", f"Task {request.task_id} already exists", {"task_id": request.task_id}
        ) from None
    return models.TaskResponse(
        task_id=name_of(task),
        status=STATUS[task.status],
        message="Task submitted successfully",
        estimated_completion_ms=ctx.services.metrics.estimated_execution_ms(ctx.api),
    )


async def get_task_status(
    request: models.GetTaskStatusInput, ctx: RequestContext
) -> models.TaskStatusResponse:
    return status_response(await task_service.find(ctx.services, ctx.tenant_id, request.task_id))


async def stream_task_updates(
    request: models.StreamTaskUpdatesInput, ctx: RequestContext
) -> AsyncIterator[models.TaskUpdate]:
    task: TaskRecord | None = None
    async for change in task_service.updates(ctx.services, ctx.tenant_id, request.task_id):
        if isinstance(change, TaskRecord):  # the first: the task as it is
            task = change
        assert task is not None
        yield update(task, change)


async def cancel_task(request: models.CancelTaskInput, ctx: RequestContext) -> models.TaskCancelResponse:
    """`success: false` (not an error) when the task has already ended, as the reference's
    `{success, message}` answer allows."""
    try:
        await task_service.cancel(ctx.services, ctx.tenant_id, request.task_id, request.reason)
    except TaskNotCancellable as finished:
        return models.TaskCancelResponse(
            success=False, message=f"Task {request.task_id} has already ended ({STATUS[finished.status]})"
        )
    return models.TaskCancelResponse(success=True, message="Task cancelled successfully")
