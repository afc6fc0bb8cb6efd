"""Handlers of the task operations: submit, read, list, cancel, result, proof, stream."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import datetime

from generated.grey import models
from handlers.grey.views import task_view
from runtime.api.context import RequestContext
from runtime.api.errors import ApiError
from runtime.api.responses import Binary
from runtime.execution.submission import check_payload, pool_of, resources_for
from runtime.execution.tee.proof import Proof
from runtime.execution.tee.service import Verdict
from runtime.services import tasks as task_service
from runtime.store import (
    DuplicateIdempotencyKey,
    InvalidCursor,
    NewTask,
    ProofRecord,
    TaskNotCancellable,
    TaskRecord,
)


def _new_task(request: models.SubmitTaskInput, ctx: RequestContext) -> NewTask:
    """Checks what can be checked without the store; the function and data above all."""
    payload = request.payload.model_dump(mode="json")
    function = check_payload(request.type, payload, request.state_key)
    resources = request.resources.model_dump(exclude_none=True) if request.resources else {}
    resources = resources_for(resources, function)
    return NewTask(
        api=ctx.api,
        tenant_id=ctx.tenant_id,
        type=request.type,
        payload=payload,
        priority=request.priority,
        timeout_seconds=request.timeout_seconds,
        idempotency_key=request.idempotency_key,
        labels=request.labels or {},
        tee_required=request.tee_required,
        state_key=request.state_key,
        dependencies=list(dict.fromkeys(request.dependencies or [])),
        resources=resources,
        pool=pool_of(resources, request.tee_required),
    )


async def submit_task(request: models.SubmitTaskInput, ctx: RequestContext) -> models.SubmitTaskResponse:
    """Validates, stores the task as pending and hands it to the runtime's queue.

    The intake thread does the store checks, the insert and the send, batched with the
    submits that arrive with this one (runtime.execution.intake). The tenant's quotas
    answer 429 `rate_limited` and 503 `queue_full` (runtime.services.tasks.submit).
    `estimated_start`: created_at + (pending tasks ahead in its pool, as urgent or more) /
    (the pool's tasks finished per second over the last minute); null with no measurement
    yet (runtime.services.estimates.StartEstimates)."""
    new = _new_task(request, ctx)
    try:
        task = await task_service.submit(ctx.services, new)
    except DuplicateIdempotencyKey as duplicate:
        raise ApiError(
            "duplicate_task",
            f"Idempotency key {request.idempotency_key!r} was already used",
            {"task_id": duplicate.existing_task_id},
        ) from None
    estimates = ctx.services.estimates
    if estimates.stale():  # at most once a second per gateway
        await ctx.services.blocking.run(estimates.refresh)
    return models.SubmitTaskResponse(
        task_id=task.task_id,
        status=task.status,
        created_at=task.created_at,
        estimated_start=estimates.estimate(task.pool, task.priority, task.created_at),
    )


async def get_task(request: models.GetTaskInput, ctx: RequestContext) -> models.Task:
    return task_view(await task_service.find(ctx.services, ctx.tenant_id, request.task_id))


def _labels(pairs: list[str] | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs or []:
        key, _, value = pair.partition("=")
        labels[key] = value
    return labels


def _when(value: datetime | str | None, name: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError("invalid_parameter", f"{name} is not an RFC 3339 time", {"parameter": name}) from None


async def list_tasks(request: models.ListTasksInput, ctx: RequestContext) -> models.TaskList:
    store = ctx.services.store
    try:
        page = await ctx.services.blocking.run(
            lambda: store.tasks.list(
                ctx.tenant_id,
                statuses=request.status.split(",") if request.status else None,
                type=request.type,
                labels=_labels(request.label),
                since=_when(request.since, "since"),
                until=_when(request.until, "until"),
                limit=request.limit,
                cursor=request.cursor,
            )
        )
    except InvalidCursor:
        raise ApiError(
            "invalid_parameter", "cursor is not one this API issued", {"parameter": "cursor"}
        ) from None
    return models.TaskList(
        tasks=[task_view(task) for task in page.tasks],
        total=page.total,
        total_exact=page.total_exact,
        has_more=page.has_more,
        next_cursor=page.next_cursor,
    )


async def cancel_task(request: models.CancelTaskInput, ctx: RequestContext) -> models.CancelTaskResponse:
    try:
        task = await task_service.cancel(ctx.services, ctx.tenant_id, request.task_id, request.reason)
    except TaskNotCancellable as finished:
        raise ApiError(
            "task_not_cancellable",
            f"Task {request.task_id} is already {finished.status}",
            {"task_id": request.task_id, "status": finished.status},
        ) from None
    assert task.cancelled_at is not None
    return models.CancelTaskResponse(task_id=task.task_id, status=task.status, cancelled_at=task.cancelled_at)


async def get_task_result(request: models.GetTaskResultInput, ctx: RequestContext) -> models.TaskResult:
    task = await task_service.find(ctx.services, ctx.tenant_id, request.task_id)
    if task.status != "completed" or task.result is None:
        raise ApiError(
            "result_not_ready",
            f"Task {request.task_id} is {task.status}; a result exists once it has completed",
            {"task_id": task.task_id, "status": task.status},
        )
    size = len(json.dumps(task.result, separators=(",", ":")).encode())
    return models.TaskResult(task_id=task.task_id, result=task.result, result_size_bytes=size)


def _proof(ctx: RequestContext, task: TaskRecord) -> tuple[ProofRecord, Proof, Verdict] | None:
    """The task's proof and this gateway's verdict on it (None: no proof stored)."""
    services = ctx.services
    record = services.store.tee.proof(ctx.tenant_id, task.task_id)
    if record is None:
        return None
    proof = services.runtime.tee.proof(record, task.result)
    return record, proof, services.runtime.tee.check_proof(proof)


async def get_task_proof(
    request: models.GetTaskProofInput, ctx: RequestContext
) -> models.ProofResponse | Binary:
    """GET /v1/tasks/{task_id}/proof and gRPC GetTaskProof: the TEE proof of a task that
    completed on the tee pool; `format=binary` answers the proof file `grey verify-proof` checks."""
    task = await task_service.find(ctx.services, ctx.tenant_id, request.task_id)
    details = {"task_id": task.task_id, "status": task.status, "pool": task.pool}
    if task.pool != "tee":
        raise ApiError("conflict", f"Task {request.task_id} did not run in a TEE: it has no proof", details)
    found = await ctx.services.blocking.run(_proof, ctx, task) if task.proof_available else None
    if found is None:
        raise ApiError(
            "result_not_ready",
            f"Task {request.task_id} is {task.status}; a proof exists once it has completed in the TEE",
            details,
        )
    record, proof, verdict = found
    if request.format == "binary":
        return Binary(proof.to_bytes())
    return models.ProofResponse(
        task_id=proof.task_id,
        platform=proof.platform,
        debug=proof.debug,
        mrenclave=record.mrenclave,
        mrsigner=record.mrsigner,
        quote=base64.b64encode(proof.quote).decode(),
        verified=verdict.valid,
        verified_at=verdict.at if verdict.valid else None,
        verification_error=verdict.reason,
        node_id=proof.node_id,
        nonce=proof.nonce.hex(),
        node_key=proof.node_key,
        receipt=proof.receipt,
    )


async def _updates(task_id: str, ctx: RequestContext) -> AsyncIterator[models.TaskStatusUpdate]:
    """The current state first, then every event in order, until a terminal status."""
    async for update in task_service.updates(ctx.services, ctx.tenant_id, task_id):
        if isinstance(update, TaskRecord):
            message = (update.error or {}).get("message") if update.error else None
            yield models.TaskStatusUpdate(
                task_id=update.task_id,
                status=update.status,
                progress=update.progress,
                message=message,
                timestamp=update.updated_at,
            )
        else:
            yield models.TaskStatusUpdate(
                task_id=update.task_id,
                status=update.status,
                progress=update.progress,
                message=update.message,
                timestamp=update.at,
            )


async def stream_task(
    request: models.StreamTaskInput, ctx: RequestContext
) -> AsyncIterator[models.TaskStatusUpdate]:
    """GET /v1/tasks/{task_id}/stream and gRPC StreamTaskStatus: live status until the task ends."""
    async for update in _updates(request.task_id, ctx):
        yield update


async def stream_task_events(
    request: models.StreamTaskEventsInput, ctx: RequestContext
) -> AsyncIterator[models.TaskStatusUpdate]:
    """GET /v1/tasks/{task_id}/events: OpenMCP Chain's name for the same stream."""
    async for update in _updates(request.task_id, ctx):
        yield update
