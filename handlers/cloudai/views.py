"""Grey's task and worker records in CloudAI's words.

| Grey status | CloudAI status |
|---|---|
| pending | queued |
| running | running |
| completed | completed |
| failed | failed (`exit_code` kept) |
| cancelled | cancelled |
| timeout | failed (`error`: timed out after N s) |

CloudAI shows container tasks only (Grey's type `container`): its shapes are an image, a
command and resource requests. `user_id` is the task's `user_id` label.
"""

from __future__ import annotations

from typing import Any, Literal

from generated.cloudai import models
from runtime.services.workers import WorkerView
from runtime.store import TaskLogRecord, TaskRecord

Status = Literal["pending", "queued", "running", "completed", "failed", "cancelled"]

USER_LABEL = "user_id"

STATUS: dict[str, Status] = {
    "pending": "queued",
    "running": "running",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "timeout": "failed",
}

GREY_STATUSES: dict[str, tuple[str, ...]] = {
    "pending": (),  # accepted, it is queued at once: the filter matches nothing
    "queued": ("pending",),
    "running": ("running",),
    "completed": ("completed",),
    "failed": ("failed", "timeout"),
    "cancelled": ("cancelled",),
}
"""A CloudAI status filter → the Grey statuses it matches."""


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _exit_code(task: TaskRecord) -> int | None:
    for source in (task.result, (task.error or {}).get("details")):
        if isinstance(source, dict) and isinstance(source.get("exit_code"), int):
            return int(source["exit_code"])
    return None


def _error(task: TaskRecord) -> str | None:
    if task.status == "timeout":
        return f"timed out after {task.timeout_seconds} s"
    if task.status == "cancelled":
        return f"cancelled: {task.cancel_reason}" if task.cancel_reason else "cancelled"
    if task.status == "failed":
        return str((task.error or {}).get("message") or "the container failed")
    return None


def summary(task: TaskRecord) -> models.TaskSummary:
    return models.TaskSummary(
        task_id=task.task_id,
        user_id=task.labels.get(USER_LABEL),
        status=STATUS[task.status],
        created_at=task.created_at,
        worker_id=task.executed_on,
    )


def detail(task: TaskRecord) -> models.TaskDetail:
    resources = task.resources or {}
    return models.TaskDetail(
        task_id=task.task_id,
        user_id=task.labels.get(USER_LABEL),
        docker_image=str(task.payload.get("image", "")),
        command=str(task.payload.get("command", "")),
        req_cpu=_number(resources.get("cpu")),
        req_memory=_number(resources.get("memory_gb")),
        req_storage=_number(resources.get("storage_gb")),
        req_gpu=_number(resources.get("gpu")),
        status=STATUS[task.status],
        created_at=task.created_at,
        started_at=task.started_at,
        worker_id=task.executed_on,
        completed_at=task.completed_at,
        exit_code=_exit_code(task),
        duration_ms=task.duration_ms,
        error=_error(task),
    )


def logs(task: TaskRecord, log: TaskLogRecord | None) -> models.TaskLogs:
    """The node's saved log when there is one (longer), else the result's output tail."""
    result = task.result if isinstance(task.result, dict) else {}
    if log is not None:
        output, truncated = log.text, log.truncated
    else:
        output = str(result.get("output") or "")
        truncated = bool(result.get("output_truncated", result.get("truncated", False)))
    return models.TaskLogs(
        task_id=task.task_id,
        status=STATUS[task.status],
        exit_code=_exit_code(task),
        output=output,
        truncated=truncated,
    )


def _worker_fields(worker: WorkerView) -> dict[str, Any]:
    heartbeat = worker.last_heartbeat or worker.registered_at
    return {
        "worker_id": worker.node_id,
        "worker_ip": worker.address,
        "total_cpu": worker.total.cpu,
        "total_memory": worker.total.memory_gb,
        "total_storage": worker.total.storage_gb,
        "total_gpu": worker.total.gpu,
        "allocated_cpu": worker.allocated.cpu,
        "allocated_memory": worker.allocated.memory_gb,
        "allocated_storage": worker.allocated.storage_gb,
        "allocated_gpu": worker.allocated.gpu,
        "available_cpu": worker.available.cpu,
        "available_memory": worker.available.memory_gb,
        "available_storage": worker.available.storage_gb,
        "available_gpu": worker.available.gpu,
        "is_active": worker.is_active,
        "last_heartbeat": int(heartbeat.timestamp()),
        "registered_at": worker.registered_at,
        "pool": worker.pool,
        "containers": worker.containers,
        "containers_reason": worker.containers_reason,
    }


def worker(view: WorkerView) -> models.Worker:
    return models.Worker(**_worker_fields(view))


def worker_detail(view: WorkerView, tenant_id: str) -> models.WorkerDetail:
    """With the tasks of `tenant_id` running on it: another tenant's are not its to see."""
    running = [
        models.RunningTask(
            task_id=task.task_id, user_id=task.labels.get(USER_LABEL), started_at=task.started_at
        )
        for task in view.running_tasks
        if task.tenant_id == tenant_id
    ]
    return models.WorkerDetail(**_worker_fields(view), running_tasks=running)
