"""CloudAI's `total`: exact up to Grey's count cap; past it a lower bound that never falls
below what the pages up to this one hold, so `offset + limit < total` still finds the next."""

from __future__ import annotations

import httpx

from runtime.services import Services
from runtime.store import NewTask
from runtime.store.records import CONTAINER_TASK, TOTAL_CAP


def _containers(services: Services, count: int, user: str) -> None:
    news = [
        NewTask(
            tenant_id="acme",
            type=CONTAINER_TASK,
            payload={"image": "busybox", "command": "true"},
            labels={"user_id": user},
            api="cloudai",
        )
        for _ in range(count)
    ]
    for first in range(0, count, 500):
        services.store.tasks.insert_many(news[first : first + 500])


async def test_total_is_exact_below_the_cap_and_a_lower_bound_past_it(
    cloudai: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    _containers(services, TOTAL_CAP + 30, "alice")
    _containers(services, 3, "bob")
    bob = (await cloudai.get("/api/tasks", params={"user_id": "bob"}, headers=headers)).json()
    assert bob["total"] == 3
    first = (await cloudai.get("/api/tasks", params={"limit": 10}, headers=headers)).json()
    assert first["total"] == TOTAL_CAP
    last = (
        await cloudai.get("/api/tasks", params={"limit": 10, "offset": TOTAL_CAP + 20}, headers=headers)
    ).json()
    assert len(last["tasks"]) == 10
    assert last["total"] >= TOTAL_CAP + 30  # offset + this page + one more to come
