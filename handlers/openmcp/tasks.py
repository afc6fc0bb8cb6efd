"""OpenMCP Chain's TaskService: submit, get and stream tasks of the caller's workspace.

`type` names what runs: a named pipeline (`report_generation`, ...) runs as a Grey
`pipeline` task, anything else as a `stateless` task whose function is `type` with
`payload` as its data. `metadata` becomes the task's labels; `metadata.priority` in
Grey's words (low/normal/high/critical) sets its priority.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from generated.openmcp import models
from handlers.openmcp.views import detail, event, summary
from runtime.api.context import RequestContext
from runtime.api.errors import ApiError
from runtime.execution.pipeline import get_pipeline
from runtime.execution.submission import check_payload, pool_of, resources_for
from runtime.services import tasks as task_service
from runtime.store import NewTask

PRIORITIES = ("low", "normal", "high", "critical")


def _new_task(request: models.SubmitTaskInput, ctx: RequestContext) -> NewTask:
    if request.workspace_id is not None and request.workspace_id != ctx.tenant_id:
        raise ApiError(
            "forbidden",
            f"workspace_id {request.workspace_id!r} is not the token's workspace",
            {"field": "workspace_id"},
        )
    metadata = dict(request.metadata or {})
    data = request.payload or {}
    if get_pipeline(request.type) is not None:
        task_type, payload = "pipeline", {"pipeline": request.type, "data": data}
    else:
        task_type, payload = "stateless", {"function": request.type, "data": data}
    function = check_payload(task_type, payload, None)
    resources = resources_for({}, function)
    priority = metadata.get("priority", "normal")
    return NewTask(
        api=ctx.api,
        tenant_id=ctx.tenant_id,
        type=task_type,
        payload=payload,
        priority=priority if priority in PRIORITIES else "normal",
        labels=metadata,
        resources=resources,
        pool=pool_of(resources, False),
    )


async def submit_task(request: models.SubmitTaskInput, ctx: RequestContext) -> models.TaskSummary:
    task = await task_service.submit(ctx.services, _new_task(request, ctx))
    return summary(task)


async def get_task(request: models.GetTaskInput, ctx: RequestContext) -> models.TaskDetail:
    return detail(await task_service.find(ctx.services, ctx.tenant_id, request.task_id))


async def stream_task_events(
    request: models.StreamTaskEventsInput, ctx: RequestContext
) -> AsyncIterator[models.TaskEvent]:
    async for update in task_service.updates(ctx.services, ctx.tenant_id, request.task_id):
        yield event(update)
