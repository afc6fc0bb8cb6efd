"""gswarm's task queue: the tenant's `gswarm.*` Grey tasks in gswarm's words.

Downloads, moves, copies, chunk moves and transfers, deploys are Grey tasks of types
`gswarm.<kind>` (Grey's TaskKind lists them); this view reads them from the task store, so
the counts are real and the history survives restarts. A task of any other type is not
found here, as another tenant's is not.
"""

from __future__ import annotations

import asyncio
import heapq
from datetime import UTC, datetime
from typing import Literal

from generated.gswarm_host import models
from generated.gswarm_host.errors import ERROR_CODES
from runtime.api.context import RequestContext
from runtime.api.errors import ApiError
from runtime.services import Services
from runtime.services import tasks as task_service
from runtime.store import TaskNotCancellable, TaskPage, TaskRecord
from runtime.store.records import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING, TIMEOUT

PREFIX = "gswarm."
GSWARM_TYPES: tuple[str, ...] = (
    "gswarm.download",
    "gswarm.move",
    "gswarm.copy",
    "gswarm.delete",
    "gswarm.chunk_move",
    "gswarm.chunk_transfer",
    "gswarm.deploy",
    "gswarm.undeploy",
)
"""Every task type gswarm's APIs submit; Grey's contract lists the same in its TaskKind
(tests/handlers/gswarm_host/test_queue.py holds them equal)."""

Status = Literal["pending", "running", "completed", "failed", "cancelled"]
Priority = Literal["critical", "high", "normal", "low"]

PRIORITY_LEVELS: list[Priority] = ["critical", "high", "normal", "low"]

STATUS: dict[str, Status] = {
    PENDING: "pending",
    RUNNING: "running",
    COMPLETED: "completed",
    FAILED: "failed",
    CANCELLED: "cancelled",
    TIMEOUT: "failed",
}
"""Grey's status → gswarm's (a timeout is a failure whose `error` says so)."""

GREY_STATUSES: dict[str, tuple[str, ...]] = {
    "pending": (PENDING,),
    "queued": (PENDING,),
    "running": (RUNNING,),
    "completed": (COMPLETED,),
    "failed": (FAILED, TIMEOUT),
    "cancelled": (CANCELLED,),
}
"""A gswarm status filter → the Grey statuses it matches."""

FINISHED: tuple[str, ...] = (COMPLETED, FAILED, TIMEOUT, CANCELLED)


def _unix(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def resources_of(task: TaskRecord) -> models.TaskResources:
    """What the task works on: the payload's `resources` when the submitter wrote them, else
    read from its fields (`model_name`, `chunk_id`, `source_device`, `target_device`, ...)."""
    payload = task.payload
    given = payload.get("resources")
    if isinstance(given, dict):
        chunks = _strings(given.get("chunks"))
        return models.TaskResources(
            devices=_strings(given.get("devices")),
            models=_strings(given.get("models")),
            chunks=chunks or None,
        )
    devices: list[str] = []
    for key in ("source_device", "target_device", "device", "devices"):
        devices += [device for device in _strings(payload.get(key)) if device not in devices]
    chunks = _strings(payload.get("chunk_id"))
    return models.TaskResources(
        devices=devices, models=_strings(payload.get("model_name")), chunks=chunks or None
    )


def _error(task: TaskRecord) -> tuple[str | None, str | None]:
    """(why it did not complete, gswarm's code for it)."""
    if task.status == TIMEOUT:
        return f"timed out after {task.timeout_seconds} s", ERROR_CODES["task_failed"]
    if task.status == CANCELLED:
        return task.cancel_reason or "cancelled", None
    if task.error is None:
        return None, None
    code = task.error.get("code")
    message = task.error.get("message")
    public = ERROR_CODES.get(code, ERROR_CODES["task_failed"]) if isinstance(code, str) else None
    return (str(message) if message is not None else None), public


def view(task: TaskRecord) -> models.QueueTask:
    """A Grey task as gswarm's queue shows it."""
    error, error_code = _error(task)
    return models.QueueTask(
        task_id=task.task_id,
        task_type=task.type.removeprefix(PREFIX),
        priority=task.priority,  # Grey's priorities are gswarm's words
        status=STATUS[task.status],
        dependencies=list(task.dependencies),
        resources=resources_of(task),
        created_at=task.created_at.timestamp(),
        started_at=_unix(task.started_at),
        completed_at=_unix(task.completed_at),
        progress=max(0, min(100, task.progress)),
        node=task.executed_on,
        error=error,
        error_code=error_code,
        result=task.result,
    )


async def _newest(
    services: Services,
    tenant_id: str,
    statuses: tuple[str, ...] | None,
    limit: int,
    since: datetime | None = None,
) -> list[TaskRecord]:
    """The tenant's newest `limit` gswarm tasks: one ordered index range per type, merged."""

    def page(kind: str) -> TaskPage:
        return services.store.tasks.list(tenant_id, statuses=statuses, type=kind, since=since, limit=limit)

    pages = await asyncio.gather(*(services.blocking.run(page, kind) for kind in GSWARM_TYPES))
    merged = heapq.merge(
        *(page.tasks for page in pages), key=lambda task: (task.created_at, task.task_id), reverse=True
    )
    return [task for _, task in zip(range(limit), merged, strict=False)]


def max_concurrent_tasks(services: Services) -> int:
    """How many gswarm tasks may run at once: the placement nodes' worker threads as their
    workers report them (`placement.concurrency` in a node's heartbeat info), else the worker
    threads this process runs."""
    total = 0
    for node in services.store.nodes.list(role="worker", status="active"):
        placement = node.info.get("placement")
        if isinstance(placement, dict) and isinstance(placement.get("concurrency"), int):
            total += int(placement["concurrency"])
    return total or services.worker_threads()


def _status(services: Services, tenant_id: str) -> models.QueueStatus:
    counts = services.store.figures.count_by_status(tenant_id, types=GSWARM_TYPES)
    return models.QueueStatus(
        pending=counts[PENDING],
        running=counts[RUNNING],
        completed=counts[COMPLETED],
        failed=counts[FAILED] + counts[TIMEOUT],
        cancelled=counts[CANCELLED],
        config=models.QueueConfig(
            max_concurrent_tasks=max_concurrent_tasks(services),
            priority_levels=PRIORITY_LEVELS,
            resource_tracking=True,
        ),
    )


async def get_queue_status(request: models.GetQueueStatusInput, ctx: RequestContext) -> models.QueueStatus:
    """Counts over the tenant's whole gswarm history (its `(tenant, type)` index ranges)."""
    return await ctx.services.blocking.run(_status, ctx.services, ctx.tenant_id)


async def list_queue_tasks(request: models.ListQueueTasksInput, ctx: RequestContext) -> models.QueueTaskList:
    statuses = GREY_STATUSES[request.status] if request.status is not None else None
    found = await _newest(ctx.services, ctx.tenant_id, statuses, request.limit)
    return models.QueueTaskList(tasks=[view(task) for task in found])


async def _gswarm_task(ctx: RequestContext, task_id: str) -> TaskRecord:
    """The tenant's gswarm task of that id; any other task is not this API's to show."""
    task = await task_service.find(ctx.services, ctx.tenant_id, task_id)
    if not task.type.startswith(PREFIX):
        raise ApiError.task_not_found(task_id)
    return task


async def get_queue_task(request: models.GetQueueTaskInput, ctx: RequestContext) -> models.QueueTask:
    return view(await _gswarm_task(ctx, request.task_id))


async def cancel_queue_task(
    request: models.CancelQueueTaskInput, ctx: RequestContext
) -> models.CancelTaskResponse:
    """409 CONFLICT once it has finished; a running move is stopped by its node's worker."""
    task = await _gswarm_task(ctx, request.task_id)
    try:
        await task_service.cancel(ctx.services, ctx.tenant_id, task.task_id, "cancelled over gswarm's API")
    except TaskNotCancellable as finished:
        status = STATUS.get(finished.status, finished.status)
        raise ApiError(
            "task_not_cancellable",
            f"Task {request.task_id} cannot be cancelled: it is already {status}",
            {"task_id": request.task_id, "status": status},
        ) from None
    return models.CancelTaskResponse(
        task_id=task.task_id, status="cancelled", message="Task cancellation requested"
    )


def parse_since(text: str) -> datetime:
    """ISO 8601 (`2024-01-01T00:00:00Z`; without a zone: UTC) or unix seconds (`1704067200`)."""
    try:
        return datetime.fromtimestamp(float(text), tz=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        moment = datetime.fromisoformat(text.upper())  # RFC 3339 allows `t` and `z`
    except ValueError:
        raise ApiError(
            "invalid_parameter",
            f"query parameter 'since': {text!r} is neither an ISO 8601 time nor unix seconds",
            {"parameter": "since"},
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def get_queue_history(
    request: models.GetQueueHistoryInput, ctx: RequestContext
) -> models.QueueTaskList:
    """Finished tasks (completed, failed, cancelled), newest first."""
    since = parse_since(request.since) if request.since is not None else None
    statuses = GREY_STATUSES[request.status] if request.status is not None else FINISHED
    found = await _newest(ctx.services, ctx.tenant_id, statuses, request.limit, since)
    return models.QueueTaskList(tasks=[view(task) for task in found])
