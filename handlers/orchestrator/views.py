"""Grey's task records in the Orchestrator's words.

| Grey status | Orchestrator status | `error.code` |
|---|---|---|
| pending | queued | |
| running | running | |
| completed | completed | |
| failed | failed | EXECUTION_FAILED |
| cancelled | cancelled | CANCELLED |
| timeout | timeout | TIMEOUT |

A task's `task_id` here is the client's (Grey's idempotency key) when it has one, else
Grey's id. A pipeline's steps are its `agent_executions`; any other task is one agent, its
function.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from generated.orchestrator import models
from runtime.execution.pipeline import agent_id
from runtime.store import TaskEvent, TaskRecord

Status = Literal["queued", "running", "completed", "failed", "cancelled", "timeout"]

STATUS: dict[str, Status] = {
    "pending": "queued",
    "running": "running",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "timeout": "timeout",
}
ERROR_CODES = {"failed": "EXECUTION_FAILED", "cancelled": "CANCELLED", "timeout": "TIMEOUT"}
#: Progress messages of pipeline steps start with the agent's id (runtime.execution.pipeline).
_AGENT = re.compile(r"^(agent-[A-Za-z0-9_.-]+)")


def name_of(task: TaskRecord) -> str:
    """The task's id in this API: the client's, else Grey's."""
    return task.idempotency_key or task.task_id


def _steps(task: TaskRecord) -> list[dict[str, Any]]:
    steps = (task.result or {}).get("steps") if task.type == "pipeline" else None
    return [step for step in steps or [] if isinstance(step, dict)]


def _execution(step: dict[str, Any]) -> models.AgentExecution:
    status = step.get("status", "completed")
    function = str(step.get("function", "agent"))
    return models.AgentExecution(
        agent_id=str(step.get("agent_id") or agent_id(function, int(step.get("index", 0)))),
        agent_type=function,
        status=STATUS.get(status, "failed") if status != "completed" else "completed",
        execution_time_ms=step.get("execution_time_ms"),
        retry_count=step.get("retry_count"),
        error=step.get("error"),
    )


def agent_executions(task: TaskRecord) -> list[models.AgentExecution]:
    if task.type == "pipeline":
        return [_execution(step) for step in _steps(task)]
    if task.status == "pending":
        return []
    function = str(task.payload.get("function") or task.type)
    return [
        models.AgentExecution(
            agent_id=agent_id(function, 0),
            agent_type=function,
            status=STATUS[task.status],
            execution_time_ms=task.execution_time_ms,
            retry_count=task.retry_count,
        )
    ]


def output(task: TaskRecord) -> models.Output | None:
    if task.status != "completed" or task.result is None:
        return None
    value: Any = task.result.get("output") if task.type == "pipeline" else task.result
    if isinstance(value, list):  # a parallel stage: one output per agent; a typed one is the answer
        typed = [item for item in value if _typed(item)]
        value = typed[-1] if typed else value
    if _typed(value):
        return models.Output(type=value["type"], data=value["data"])
    if isinstance(value, dict):
        return models.Output(type="json", data=value)
    return models.Output(type="json", data={"value": value})


def _typed(value: Any) -> bool:
    return (
        isinstance(value, dict) and isinstance(value.get("type"), str) and isinstance(value.get("data"), dict)
    )


def error(task: TaskRecord) -> models.Error | None:
    code = ERROR_CODES.get(task.status)
    if code is None:
        return None
    if task.status == "cancelled":
        message = f"Task cancelled: {task.cancel_reason}" if task.cancel_reason else "Task cancelled"
    elif task.status == "timeout":
        message = f"Task exceeded its timeout of {task.timeout_seconds} s"
    else:
        message = str((task.error or {}).get("message") or "Task execution failed")
    return models.Error(code=code, message=message)


def status_response(task: TaskRecord) -> models.TaskStatusResponse:
    executions = agent_executions(task)
    step_retries = (
        sum(execution.retry_count or 0 for execution in executions) if task.type == "pipeline" else 0
    )
    return models.TaskStatusResponse(
        task_id=name_of(task),
        status=STATUS[task.status],
        agent_executions=executions,
        output=output(task),
        error=error(task),
        metrics=models.TaskMetrics(
            total_duration_ms=task.duration_ms,
            queue_time_ms=task.queue_time_ms,
            execution_time_ms=task.execution_time_ms,
            retry_count=task.retry_count + step_retries,
            agents_used=len(executions),
        ),
    )


def update(task: TaskRecord, change: TaskRecord | TaskEvent) -> models.TaskUpdate:
    """One stream update: the task as it is first, then one per event."""
    if isinstance(change, TaskRecord):
        status, progress, message, at = change.status, change.progress, None, change.updated_at
    else:
        status, progress, message, at = change.status, change.progress, change.message, change.at
    agent = _AGENT.match(message or "")
    return models.TaskUpdate(
        task_id=name_of(task),
        status=STATUS[status],
        agent_id=agent.group(1) if agent else None,
        message=message,
        progress_percent=progress,
        timestamp_ms=round(at.timestamp() * 1000),
    )
