"""gswarm's queue views over Grey's task store: real counts, the reference's task shape,
filters, 404 for what is not the tenant's gswarm task, cancel, and the history.

Tasks are written to the store directly (as gswarm's submissions and a node's worker leave
them), so these tests do not depend on the placement engine.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml

from handlers.gswarm_host.queue import GSWARM_TYPES
from runtime.gateway.app import Platform
from runtime.gateway.contracts import CONTRACTS
from runtime.services import Services
from runtime.settings import Settings
from runtime.store import NewTask, TaskRecord
from runtime.store.coltypes import utc_now
from tests.support.cloudai import seed_worker
from tests.support.envelope import data, error
from tests.support.platform import TEST_RATE_LIMITS, make_key

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def host(api_rest: Callable[[str], httpx.AsyncClient]) -> httpx.AsyncClient:
    return api_rest("gswarm_host")


@pytest.fixture
def headers(key: str) -> dict[str, str]:
    """Tenant `acme`, every scope."""
    return {"X-API-Key": key}


def seed(
    services: Services,
    type: str = "gswarm.move",
    status: str = "pending",
    *,
    tenant: str = "acme",
    payload: dict[str, Any] | None = None,
    priority: str = "normal",
    dependencies: list[str] | None = None,
    created_at: datetime | None = None,
    error: dict[str, Any] | None = None,
    progress: int = 0,
) -> TaskRecord:
    """A gswarm task row as its submission writes it, moved to `status` as its node would."""
    task = services.store.tasks.insert(
        NewTask(
            tenant_id=tenant,
            type=type,
            payload=payload
            if payload is not None
            else {"model_name": "llama-7b", "source_device": "node1:disk", "target_device": "node1:gpu0"},
            priority=priority,
            dependencies=dependencies or [],
            api="gswarm_client",
            created_at=created_at or utc_now(),
        )
    )
    lifecycle = services.store.lifecycle
    if status != "pending":
        assert lifecycle.transition(
            task.task_id,
            from_statuses=("pending",),
            to_status="running",
            executed_on="node1",
            started_at=utc_now(),
            progress=progress,
        )
    if status == "cancelled":
        services.store.tasks.cancel(tenant, task.task_id, "no longer needed")
    elif status not in ("pending", "running"):
        assert lifecycle.transition(
            task.task_id,
            from_statuses=("running",),
            to_status=status,
            completed_at=utc_now(),
            error=error,
            progress=100 if status == "completed" else progress,
            result={"bytes": 1024, "bytes_per_second": 2048.0} if status == "completed" else None,
        )
    found = services.store.tasks.find(tenant, task.task_id)
    assert found is not None
    return found


async def test_queue_status_counts_the_tenants_gswarm_tasks_only(
    host: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    for status in ("pending", "pending", "running", "completed", "completed", "completed"):
        seed(services, status=status)
    seed(services, "gswarm.download", "failed", error={"code": "network_error", "message": "refused"})
    seed(services, "gswarm.copy", "timeout")
    seed(services, "gswarm.chunk_move", "cancelled")
    seed(services, "container", "pending")  # CloudAI's, not gswarm's
    seed(services, status="pending", tenant="other")  # another tenant's

    queue = data(await host.get("/api/v1/queue", headers=headers))
    assert (queue["pending"], queue["running"], queue["completed"]) == (2, 1, 3)
    assert (queue["failed"], queue["cancelled"]) == (2, 1)
    assert queue["config"]["priority_levels"] == ["critical", "high", "normal", "low"]
    assert queue["config"]["resource_tracking"] is True


async def test_max_concurrent_tasks_is_the_placement_nodes_concurrency(
    host: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    config = data(await host.get("/api/v1/queue", headers=headers))["config"]
    assert config["max_concurrent_tasks"] == services.worker_threads()  # no placement node yet
    for node_id, concurrency in (("w1", 3), ("w2", 5)):
        node = seed_worker(services, node_id)
        services.store.nodes.upsert(
            type(node)(**{**_fields(node), "info": {**node.info, "placement": {"concurrency": concurrency}}})
        )
    seed_worker(services, "w3", status="down")
    config = data(await host.get("/api/v1/queue", headers=headers))["config"]
    assert config["max_concurrent_tasks"] == 8


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


async def test_tasks_are_listed_newest_first_in_the_references_shape(
    host: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    first = seed(services, "gswarm.download", "completed", created_at=T0, payload={"model_name": "a"})
    running = seed(
        services,
        "gswarm.move",
        "running",
        created_at=T0 + timedelta(seconds=10),
        priority="high",
        dependencies=[first.task_id],
        progress=45,
    )
    tasks = data(await host.get("/api/v1/queue/tasks", headers=headers))["tasks"]
    assert [task["task_id"] for task in tasks] == [running.task_id, first.task_id]
    shown = tasks[0]
    assert shown["task_type"] == "move" and tasks[1]["task_type"] == "download"
    assert (shown["priority"], shown["status"], shown["progress"]) == ("high", "running", 45)
    assert shown["dependencies"] == [first.task_id]
    assert shown["resources"]["devices"] == ["node1:disk", "node1:gpu0"]
    assert shown["resources"]["models"] == ["llama-7b"]
    assert shown["created_at"] == pytest.approx((T0 + timedelta(seconds=10)).timestamp())
    assert isinstance(shown["started_at"], float) and shown["node"] == "node1"
    assert tasks[1]["resources"] == {"devices": [], "models": ["a"]}
    assert tasks[1]["result"]["bytes"] == 1024 and tasks[1]["progress"] == 100


async def test_the_payloads_own_resources_are_shown_as_written(
    host: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    written = {"devices": ["node2:dram"], "models": [], "chunks": ["chunk-1"]}
    task = seed(services, "gswarm.chunk_transfer", payload={"chunk_id": "chunk-1", "resources": written})
    shown = data(await host.get(f"/api/v1/queue/tasks/{task.task_id}", headers=headers))
    assert shown["resources"] == written and shown["task_type"] == "chunk_transfer"


async def test_status_filter_and_limit(
    host: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    pending = [seed(services, created_at=T0 + timedelta(seconds=i)) for i in range(3)]
    seed(services, status="running")
    failed = seed(services, status="failed", error={"code": "resource_unavailable", "message": "full"})
    timed_out = seed(services, status="timeout")

    async def ids(query: str) -> list[str]:
        found = data(await host.get(f"/api/v1/queue/tasks?{query}", headers=headers))["tasks"]
        return [task["task_id"] for task in found]

    assert await ids("status=pending") == [task.task_id for task in reversed(pending)]
    assert await ids("status=queued") == await ids("status=pending")
    assert await ids("status=pending&limit=2") == [pending[2].task_id, pending[1].task_id]
    assert set(await ids("status=failed")) == {failed.task_id, timed_out.task_id}
    assert len(await ids("limit=1")) == 1
    error(await host.get("/api/v1/queue/tasks?status=lost", headers=headers), 400, "INVALID_REQUEST")
    error(await host.get("/api/v1/queue/tasks?limit=0", headers=headers), 400, "INVALID_REQUEST")


async def test_task_details_say_why_a_task_failed_in_gswarms_codes(
    host: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    failed = seed(
        services, status="failed", error={"code": "resource_unavailable", "message": "gpu0 is full"}
    )
    shown = data(await host.get(f"/api/v1/queue/tasks/{failed.task_id}", headers=headers))
    assert shown["status"] == "failed" and shown["error"] == "gpu0 is full"
    assert shown["error_code"] == "RESOURCE_UNAVAILABLE"
    timed_out = seed(services, status="timeout")
    shown = data(await host.get(f"/api/v1/queue/tasks/{timed_out.task_id}", headers=headers))
    assert shown["status"] == "failed" and "timed out" in shown["error"]
    cancelled = seed(services, status="cancelled")
    shown = data(await host.get(f"/api/v1/queue/tasks/{cancelled.task_id}", headers=headers))
    assert shown["status"] == "cancelled" and shown["error"] == "no longer needed"


async def test_what_is_not_the_tenants_gswarm_task_is_not_found(
    host: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    others = seed(services, tenant="other")
    container = seed(services, "container")
    for task_id in ("task_missing", others.task_id, container.task_id):
        for response in (
            await host.get(f"/api/v1/queue/tasks/{task_id}", headers=headers),
            await host.post(f"/api/v1/queue/tasks/{task_id}/cancel", headers=headers),
        ):
            refusal = error(response, 404, "NOT_FOUND")
            assert refusal["details"] == {"task_id": task_id}
    assert services.store.tasks.get("other", others.task_id).status == "pending"  # type: ignore[union-attr]


async def test_cancel_a_pending_task_then_409_once_it_has_ended(
    host: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    task = seed(services)
    answer = data(await host.post(f"/api/v1/queue/tasks/{task.task_id}/cancel", headers=headers))
    assert answer == {
        "task_id": task.task_id,
        "status": "cancelled",
        "message": "Task cancellation requested",
    }
    stored = services.store.tasks.get("acme", task.task_id)
    assert stored is not None and stored.status == "cancelled"
    refusal = error(
        await host.post(f"/api/v1/queue/tasks/{task.task_id}/cancel", headers=headers), 409, "CONFLICT"
    )
    assert refusal["details"]["status"] == "cancelled"
    done = seed(services, status="completed")
    refusal = error(
        await host.post(f"/api/v1/queue/tasks/{done.task_id}/cancel", headers=headers), 409, "CONFLICT"
    )
    assert refusal["details"]["status"] == "completed"


async def test_history_lists_finished_tasks_with_since_and_status(
    host: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    old = seed(services, status="completed", created_at=T0)
    failed = seed(
        services,
        status="failed",
        created_at=T0 + timedelta(hours=1),
        error={"code": "task_failed", "message": "x"},
    )
    recent = seed(services, "gswarm.copy", "cancelled", created_at=T0 + timedelta(hours=2))
    seed(services, status="running", created_at=T0 + timedelta(hours=3))
    seed(services, status="pending", created_at=T0 + timedelta(hours=4))

    async def ids(query: str = "") -> list[str]:
        found = data(await host.get(f"/api/v1/queue/history?{query}", headers=headers))["tasks"]
        return [task["task_id"] for task in found]

    assert await ids() == [recent.task_id, failed.task_id, old.task_id]
    assert await ids("limit=2") == [recent.task_id, failed.task_id]
    assert await ids("status=failed") == [failed.task_id]
    assert await ids("status=completed") == [old.task_id]
    since = T0 + timedelta(minutes=30)
    assert await ids("since=2024-01-01T00:30:00Z") == [recent.task_id, failed.task_id]
    assert await ids(f"since={since.timestamp():.0f}") == [recent.task_id, failed.task_id]
    assert await ids("since=2024-01-01T00:30:00") == [recent.task_id, failed.task_id]  # no zone: UTC
    refusal = error(
        await host.get("/api/v1/queue/history?since=yesterday", headers=headers), 400, "INVALID_REQUEST"
    )
    assert refusal["details"] == {"parameter": "since"}
    error(await host.get("/api/v1/queue/history?status=running", headers=headers), 400, "INVALID_REQUEST")


async def test_history_survives_a_restart(database_url: str, services: Services) -> None:
    """The history is the store's: a new process (new Services) on the same store lists it."""
    done = seed(services, status="completed")
    reopened = Services.open(Settings(database_url=database_url), TEST_RATE_LIMITS)
    try:
        app = Platform.build(reopened, [CONTRACTS["gswarm_host"]]).gateways["gswarm_host"].rest
        key = make_key(reopened, "acme")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as client:
            tasks = data(await client.get("/api/v1/queue/history", headers={"X-API-Key": key}))["tasks"]
        assert [task["task_id"] for task in tasks] == [done.task_id]
    finally:
        reopened.close()


async def test_reads_need_tasks_read_and_cancel_tasks_write(
    host: httpx.AsyncClient, services: Services
) -> None:
    task = seed(services)
    reader = {"X-API-Key": make_key(services, "acme", frozenset({"tasks:read"}))}
    data(await host.get("/api/v1/queue", headers=reader))
    error(await host.post(f"/api/v1/queue/tasks/{task.task_id}/cancel", headers=reader), 403, "FORBIDDEN")
    error(await host.get("/api/v1/queue"), 401, "UNAUTHORIZED")


async def test_greys_task_list_shows_every_gswarm_type(
    api_rest: Callable[[str], httpx.AsyncClient], headers: dict[str, str], services: Services
) -> None:
    """Grey's GET /v1/tasks lists gswarm's tasks (its TaskKind names them), never a 500."""
    created = {kind: seed(services, kind).task_id for kind in GSWARM_TYPES}
    assert {"gswarm.download", "gswarm.move", "gswarm.copy", "gswarm.deploy"} <= set(created)
    grey = api_rest("grey")
    response = await grey.get("/v1/tasks?limit=100", headers=headers)
    assert response.status_code == 200, response.text
    listed = {task["task_id"]: task["type"] for task in response.json()["tasks"]}
    assert listed == {task_id: kind for kind, task_id in created.items()}
    response = await grey.get("/v1/tasks?type=gswarm.download", headers=headers)
    assert response.status_code == 200, response.text
    assert [task["task_id"] for task in response.json()["tasks"]] == [created["gswarm.download"]]
    response = await grey.get(f"/v1/tasks/{created['gswarm.move']}", headers=headers)
    assert response.status_code == 200 and response.json()["type"] == "gswarm.move"


def test_greys_contract_names_every_gswarm_task_type() -> None:
    document = yaml.safe_load(CONTRACTS["grey"].spec.read_text())
    kinds = document["components"]["schemas"]["TaskKind"]["enum"]
    assert tuple(kind for kind in kinds if kind.startswith("gswarm.")) == GSWARM_TYPES
