"""CloudAI's store rows for tests: a task as its submit writes it, a worker as it registers.

They write the store directly, so listings, worker figures and 409s are tested without
running containers (tests/execution runs them).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from runtime.services import Services
from runtime.store import NewTask, NodeRecord, TaskRecord
from runtime.store.coltypes import utc_now
from tests.support.platform import make_key

SUBMIT = {
    "user_id": "user-123",
    "docker_image": "docker.io/library/ubuntu:latest",
    "command": "echo 'Hello World'",
    "req_cpu": 1.0,
    "req_memory": 2.0,
    "req_storage": 5.0,
    "req_gpu": 0.0,
}


def headers_for(services: Services, tenant: str, scopes: frozenset[str] | None = None) -> dict[str, str]:
    key = make_key(services, tenant) if scopes is None else make_key(services, tenant, scopes)
    return {"X-API-Key": key}


def seed_task(
    services: Services,
    tenant: str = "acme",
    user_id: str | None = "user-123",
    status: str = "pending",
    *,
    worker: str | None = None,
    result: dict[str, Any] | None = None,
    type: str = "container",
    resources: dict[str, Any] | None = None,
) -> TaskRecord:
    """A task row as CloudAI's submit writes it, moved to `status` as a worker would."""
    labels = {"user_id": user_id} if user_id is not None else {}
    payload = {"image": "busybox", "command": "echo hi"} if type == "container" else {"function": "echo"}
    task = services.store.tasks.insert(
        NewTask(
            tenant_id=tenant,
            type=type,
            payload=payload,
            labels=labels,
            resources={"cpu": 1.0, "memory_gb": 2.0, "storage_gb": 5.0, "gpu": 0}
            if resources is None
            else resources,
            api="cloudai",
        )
    )
    now = utc_now()
    if status == "pending":
        return task
    lifecycle = services.store.lifecycle
    assert lifecycle.transition(
        task.task_id,
        from_statuses=("pending",),
        to_status="running",
        executed_on=worker or "grey-worker-test",
        started_at=now,
    )
    if status != "running":
        assert lifecycle.transition(
            task.task_id,
            from_statuses=("running",),
            to_status=status,
            result=result,
            completed_at=now,
            duration_ms=5,
        )
    found = services.store.tasks.find(tenant, task.task_id)
    assert found is not None
    return found


def seed_worker(
    services: Services,
    node_id: str = "grey-worker-test",
    *,
    cpu: float = 8.0,
    memory_gb: float = 16.0,
    storage_gb: float = 100.0,
    gpus: int = 0,
    pool: str = "cpu",
    containers: bool = True,
    status: str = "active",
) -> NodeRecord:
    """A worker node row as a registered worker leaves it (its probe's outcome in `info`)."""
    now = utc_now()
    capacity = {"cpu_cores": cpu, "memory_gb": memory_gb, "storage_gb": storage_gb, "gpus": gpus}
    node = NodeRecord(
        node_id=node_id,
        role="worker",
        status=status,
        address="192.168.1.100:50052",
        started_at=now - timedelta(minutes=5),
        pool=pool,
        last_heartbeat=now,
        resources=dict(capacity),
        info={
            "capacity": capacity,
            "containers": containers,
            "containers_reason": None if containers else "podman: not installed",
        },
    )
    services.store.nodes.upsert(node)
    services.runtime.forget_nodes()
    return node
