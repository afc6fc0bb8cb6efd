"""Grey's task records in OpenMCP Chain's words.

| Grey status | OpenMCP Chain status | `error` |
|---|---|---|
| pending | PENDING | |
| running | RUNNING | |
| completed | SUCCEEDED | |
| failed | FAILED | the failure's message |
| cancelled | FAILED | `cancelled: <reason>` |
| timeout | FAILED | `timed out after N s` |
"""

from __future__ import annotations

from typing import Any, Literal

from generated.openmcp import models
from runtime.store import TaskEvent, TaskRecord

Status = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED"]

STATUS: dict[str, Status] = {
    "pending": "PENDING",
    "running": "RUNNING",
    "completed": "SUCCEEDED",
    "failed": "FAILED",
    "cancelled": "FAILED",
    "timeout": "FAILED",
}


def what_runs(task: TaskRecord) -> str:
    """OpenMCP's `type`: the named pipeline or task function, else Grey's own task type."""
    named = task.payload.get("pipeline") or task.payload.get("function")
    return named if isinstance(named, str) else task.type


def error_text(task: TaskRecord) -> str | None:
    if task.status == "cancelled":
        return f"cancelled: {task.cancel_reason}" if task.cancel_reason else "cancelled"
    if task.status == "timeout":
        return f"timed out after {task.timeout_seconds} s"
    if task.error:
        message = task.error.get("message")
        return str(message) if message else str(task.error.get("code", "failed"))
    return None


def _result(task: TaskRecord) -> dict[str, Any] | None:
    """A Struct: a result that is not an object (a list, a number) is wrapped as `value`."""
    result = task.result
    if result is None or isinstance(result, dict):
        return result
    return {"value": result}


def summary(task: TaskRecord) -> models.TaskSummary:
    return models.TaskSummary(task_id=task.task_id, status=STATUS[task.status], submitted_at=task.created_at)


def detail(task: TaskRecord) -> models.TaskDetail:
    return models.TaskDetail(
        task_id=task.task_id,
        status=STATUS[task.status],
        submitted_at=task.created_at,
        updated_at=task.updated_at,
        result=_result(task),
        error=error_text(task),
    )


def event(update: TaskRecord | TaskEvent) -> models.TaskEvent:
    """The first event is the task as it is; then one per transition or progress report."""
    if isinstance(update, TaskRecord):
        context: dict[str, Any] = {"grey_status": update.status, "progress": update.progress}
        error = error_text(update)
        if error:
            context["message"] = error
        return models.TaskEvent(
            task_id=update.task_id,
            status=STATUS[update.status],
            occurred_at=update.updated_at,
            context=context,
        )
    context = {"grey_status": update.status, "progress": update.progress}
    if update.message:
        context["message"] = update.message
    return models.TaskEvent(
        task_id=update.task_id, status=STATUS[update.status], occurred_at=update.at, context=context
    )
