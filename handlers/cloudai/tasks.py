"""CloudAI's task operations: submit, list, get, logs, cancel.

A submission is a Grey task of type `container` (`{"image", "command"}` payload, the
requests as `resources` in cores and GB, the gpu pool when it asks for a GPU) sent through
`runtime/services/tasks.py` like every API's; `user_id` is its `user_id` label, so it is a
filter within the caller's tenant and never reaches another tenant's tasks.
"""

from __future__ import annotations

from generated.cloudai import models
from handlers.cloudai.views import GREY_STATUSES, STATUS, USER_LABEL, detail, logs, summary
from runtime.api.context import RequestContext
from runtime.api.errors import ApiError
from runtime.services import tasks as task_service
from runtime.services.container_logs import task_log
from runtime.store import NewTask, TaskNotCancellable, TaskRecord
from runtime.store.records import CONTAINER_TASK


def _new_task(request: models.SubmitTaskInput, ctx: RequestContext) -> NewTask:
    if "\x00" in request.command:
        raise ApiError("invalid_payload", "command must not contain NUL characters", {"field": "command"})
    resources = {
        "cpu": request.req_cpu,
        "memory_gb": request.req_memory,
        "storage_gb": request.req_storage,
        "gpu": int(request.req_gpu),
    }
    return NewTask(
        api=ctx.api,
        tenant_id=ctx.tenant_id,
        type=CONTAINER_TASK,
        payload={"image": request.docker_image, "command": request.command},
        timeout_seconds=request.timeout_seconds,
        labels={USER_LABEL: request.user_id},
        resources=resources,
        pool="gpu" if request.req_gpu > 0 else "cpu",
    )


async def submit_task(request: models.SubmitTaskInput, ctx: RequestContext) -> models.SubmitTaskResponse:
    """Stored queued and sent; 409 UNSCHEDULABLE (from the intake's placement check) when no
    worker could ever run it."""
    task = await task_service.submit(ctx.services, _new_task(request, ctx))
    return models.SubmitTaskResponse(
        task_id=task.task_id, status=STATUS[task.status], message="Task submitted successfully"
    )


async def list_tasks(request: models.ListTasksInput, ctx: RequestContext) -> models.TaskList:
    statuses = GREY_STATUSES[request.status] if request.status is not None else None
    if statuses == ():  # `pending`: nothing is ever pending here
        return models.TaskList(tasks=[], total=0, limit=request.limit, offset=request.offset)
    labels = {USER_LABEL: request.user_id} if request.user_id is not None else None
    page = await ctx.services.blocking.run(
        ctx.services.store.tasks.list,
        ctx.tenant_id,
        statuses=statuses,
        type=CONTAINER_TASK,
        labels=labels,
        limit=request.limit,
        offset=request.offset,
    )
    # Past the store's count cap, a lower bound that still says whether a next page exists.
    seen = request.offset + len(page.tasks) + int(page.has_more)
    return models.TaskList(
        tasks=[summary(task) for task in page.tasks],
        total=page.total if page.total_exact else max(page.total, seen),
        limit=request.limit,
        offset=request.offset,
    )


async def _container_task(ctx: RequestContext, task_id: str) -> TaskRecord:
    """The tenant's container task of that id; any other task is not CloudAI's to show."""
    task = await task_service.find(ctx.services, ctx.tenant_id, task_id)
    if task.type != CONTAINER_TASK:
        raise ApiError.task_not_found(task_id)
    return task


async def get_task(request: models.GetTaskInput, ctx: RequestContext) -> models.TaskDetail:
    return detail(await _container_task(ctx, request.task_id))


async def get_task_logs(request: models.GetTaskLogsInput, ctx: RequestContext) -> models.TaskLogs:
    task = await _container_task(ctx, request.task_id)
    log = await ctx.services.blocking.run(task_log, ctx.services.store, ctx.tenant_id, task.task_id)
    return logs(task, log)


async def cancel_task(request: models.CancelTaskInput, ctx: RequestContext) -> models.CancelTaskResponse:
    """409 TASK_NOT_CANCELLABLE once it has completed, failed or been cancelled; a running
    task's container is stopped by its worker."""
    task = await _container_task(ctx, request.task_id)
    try:
        await task_service.cancel(ctx.services, ctx.tenant_id, task.task_id, "cancelled over CloudAI's API")
    except TaskNotCancellable as finished:
        raise ApiError(
            "task_not_cancellable",
            f"Task {request.task_id} cannot be cancelled: it is already {STATUS[finished.status]}",
            {"task_id": request.task_id, "status": STATUS[finished.status]},
        ) from None
    return models.CancelTaskResponse(
        task_id=task.task_id, status="cancelled", message="Task cancellation requested"
    )
