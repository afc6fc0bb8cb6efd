"""listTasks' `total`: exact up to TOTAL_CAP matches, then capped with `total_exact` false,
over REST and gRPC alike; and a task retention deleted answers 404 like one never stored."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update

from runtime.config import RetentionConfig
from runtime.execution.retention import RetentionSchedule
from runtime.services import Services
from runtime.store import NewTask
from runtime.store.coltypes import utc_now
from runtime.store.records import TOTAL_CAP
from runtime.store.schema import tasks
from tests.support.transports import GrpcCaller, RestCaller


def _stored(
    services: Services, count: int, tenant: str = "acme", labels: dict[str, str] | None = None
) -> list[str]:
    news = [
        NewTask(
            tenant_id=tenant, type="stateless", payload={"function": "echo", "data": {}}, labels=labels or {}
        )
        for _ in range(count)
    ]
    for first in range(0, count, 500):
        services.store.tasks.insert_many(news[first : first + 500])
    return [new.task_id for new in news]


async def test_total_is_exact_below_the_cap(
    call: RestCaller | GrpcCaller, key: str, services: Services
) -> None:
    _stored(services, 3)
    page = await call("listTasks", key, limit=2)
    assert page.ok and len(page.data["tasks"]) == 2
    assert (page.data["total"], page.data["total_exact"], page.data["has_more"]) == (3, True, True)


async def test_total_past_the_cap_says_the_cap_and_that_it_is_not_exact(
    call: RestCaller | GrpcCaller, key: str, services: Services
) -> None:
    _stored(services, TOTAL_CAP + 5, labels={"env": "prod"})
    _stored(services, 2, labels={"env": "dev"})
    page = await call("listTasks", key, limit=10)
    # gRPC (proto3) leaves a false bool out of the message: absent is false.
    assert (page.data["total"], page.data.get("total_exact", False)) == (TOTAL_CAP, False)
    filtered = await call("listTasks", key, limit=10, label=["env=dev"])
    assert (filtered.data["total"], filtered.data.get("total_exact")) == (2, True)
    deep = await call("listTasks", key, limit=10, cursor=page.data["next_cursor"])
    assert (deep.data["total"], deep.data.get("total_exact", False)) == (TOTAL_CAP, False)  # every page


async def test_a_task_retention_deleted_answers_404_like_an_unknown_one(
    rest: httpx.AsyncClient, key: str, services: Services
) -> None:
    [expired] = _stored(services, 1)
    store = services.store
    assert store.lifecycle.transition(expired, from_statuses=("pending",), to_status="running")
    assert store.lifecycle.transition(expired, from_statuses=("running",), to_status="completed", result={})
    with store.engine.begin() as conn:
        ended = utc_now() - timedelta(days=31)
        conn.execute(
            update(tasks).where(tasks.c.task_id == expired).values(updated_at=ended, created_at=ended)
        )
    headers = {"X-API-Key": key}
    assert (await rest.get(f"/v1/tasks/{expired}", headers=headers)).status_code == 200

    schedule = RetentionSchedule(store, RetentionConfig(finished_days=30), holding=lambda: True)
    assert schedule.run_pass() == 1

    gone = await rest.get(f"/v1/tasks/{expired}", headers=headers)
    never = await rest.get("/v1/tasks/task_00000000-0000-4000-8000-000000000000", headers=headers)
    assert gone.status_code == never.status_code == 404
    assert gone.json()["error"]["code"] == never.json()["error"]["code"]
    assert (await rest.get(f"/v1/tasks/{expired}/result", headers=headers)).status_code == 404
    listed = (await rest.get("/v1/tasks", headers=headers)).json()
    assert expired not in [task["task_id"] for task in listed["tasks"]]
