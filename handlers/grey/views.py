"""Store records → response models, shared by the handlers of every area."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from generated.grey import models
from runtime.store import NodeRecord, QuotaRecord, TaskRecord, WebhookRecord
from runtime.store.webhook_deliveries import DeliveryRecord


def task_view(task: TaskRecord) -> models.Task:
    return models.Task(
        task_id=task.task_id,
        type=task.type,
        status=task.status,
        priority=task.priority,
        progress=task.progress,
        created_at=task.created_at,
        started_at=task.started_at,
        completed_at=task.completed_at,
        duration_ms=task.duration_ms,
        executed_on=task.executed_on,
        payload=task.payload,
        result=task.result,
        error=task.error,
        labels=task.labels,
        timeout_seconds=task.timeout_seconds,
        idempotency_key=task.idempotency_key,
        state_key=task.state_key,
        dependencies=task.dependencies,
        resources=task.resources or None,
        tee_required=task.tee_required,
        tee_executed=task.tee_executed,
        proof_available=task.proof_available,
        pool=task.pool,
        device_emulated=task.device_emulated,
        metrics=models.TaskMetrics(
            queue_time_ms=task.queue_time_ms,
            execution_time_ms=task.execution_time_ms,
            retry_count=task.retry_count,
        ),
    )


def quotas_view(quotas: QuotaRecord) -> models.TenantQuotas:
    return models.TenantQuotas(tenant_id=quotas.tenant_id, quotas=models.Quotas(**quotas.limits()))


def webhook_view(webhook: WebhookRecord, disabled: tuple[datetime, str] | None = None) -> models.Webhook:
    """`disabled`: when and why its endpoint was disabled (a 410 answer), if it is."""
    return models.Webhook(
        webhook_id=webhook.webhook_id,
        url=webhook.url,
        events=webhook.events,
        created_at=webhook.created_at,
        disabled_at=disabled[0] if disabled else None,
        disabled_reason=disabled[1] if disabled else None,
    )


def delivery_view(delivery: DeliveryRecord) -> models.WebhookDelivery:
    return models.WebhookDelivery(
        delivery_id=delivery.delivery_id,
        webhook_id=delivery.webhook_id,
        task_id=delivery.task_id,
        event=delivery.event,  # one of the store's TASK_EVENTS
        state="dead" if delivery.dead_at is not None else "pending",
        attempts=delivery.attempts,
        occurred_at=delivery.occurred_at,
        next_attempt_at=delivery.next_attempt_at,
        dead_at=delivery.dead_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
    )


def _resources(figures: dict[str, Any] | None) -> models.NodeResources | None:
    return None if figures is None else models.NodeResources.model_validate(figures)


def node_view(node: NodeRecord) -> models.Node:
    info = node.info or {}
    resources = dict(node.resources)
    if "gpu" in info:  # the heartbeat's fresh memory and utilization figures
        resources["gpu_devices"] = [info["gpu"]]
    return models.Node(
        node_id=node.node_id,
        role=node.role,
        status=node.status,
        pool=node.pool,
        address=node.address,
        started_at=node.started_at,
        last_heartbeat=node.last_heartbeat,
        resources=models.NodeResources.model_validate(resources),
        allocated=_resources(info.get("allocated")),
        capacity=_resources(info.get("capacity")),
        tasks_running=node.tasks_running,
        is_leader=node.is_leader,
        tee_enabled=node.tee_enabled,
    )
