"""Webhook URLs refused at registration, pending deliveries, dead letters and redelivery
through the API (REST only: the webhook operations have no gRPC method)."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.services import Services
from runtime.store import NewTask, Store
from runtime.store.coltypes import utc_now
from runtime.store.webhook_deliveries import Settlement
from tests.support.platform import make_key


def finish_task(store: Store, tenant: str = "acme") -> str:
    task = store.tasks.insert(NewTask(tenant_id=tenant, type="stateless", payload={"function": "echo"}))
    store.lifecycle.claim(task.task_id, node_id="w", now=utc_now(), queue_time_ms=1)
    store.lifecycle.transition(task.task_id, from_statuses=("running",), to_status="completed")
    return task.task_id


def fail_all_due(store: Store, status_code: int = 500) -> None:
    """Every due delivery's attempt ends: dead (410 also disables its webhook)."""
    now = utc_now()
    for due in store.webhooks.deliveries.claim_due(now, 100, now):
        store.webhooks.deliveries.settle(
            [
                Settlement(
                    due.delivery_id,
                    due.webhook_id,
                    '{"event":"task.completed"}',
                    delivered=False,
                    status_code=status_code,
                    error=f"HTTP {status_code}",
                    disable=status_code == 410,
                )
            ],
            now,
        )


async def register(rest: Any, key: str, url: str = "https://example.test/hook") -> dict[str, Any]:
    body = {"url": url, "events": ["task.completed"], "secret": "s3cret-value"}
    created = await rest.post("/v1/webhooks", json=body, headers={"X-API-Key": key})
    assert created.status_code == 201, created.text
    return dict(created.json())


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.0.0.8:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://localhost:9/hook",  # a name that resolves to loopback
        "http://0/hook",  # 0.0.0.0
    ],
)
async def test_urls_to_internal_addresses_are_refused_at_registration(rest, key, url: str) -> None:
    body = {"url": url, "events": ["task.completed"], "secret": "s3cret-value"}
    refused = await rest.post("/v1/webhooks", json=body, headers={"X-API-Key": key})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "invalid_payload"
    assert error["details"] == {"field": "url"}
    assert "not allowed for webhooks" in error["message"]
    assert (await rest.get("/v1/webhooks", headers={"X-API-Key": key})).json()["webhooks"] == []


async def test_dead_letters_are_listed_page_by_page_and_redelivered(rest, key, services: Services) -> None:
    headers = {"X-API-Key": key}
    hook = await register(rest, key)
    store = services.store
    tasks = [finish_task(store) for _ in range(3)]
    listed = await rest.get(f"/v1/webhooks/{hook['webhook_id']}/deliveries", headers=headers)
    assert listed.status_code == 200
    pending = listed.json()["deliveries"]
    assert {d["task_id"] for d in pending} == set(tasks)
    assert {(d["state"], d["event"], d["attempts"]) for d in pending} == {("pending", "task.completed", 0)}

    fail_all_due(store)
    first = (
        await rest.get(f"/v1/webhooks/{hook['webhook_id']}/dead-letters?limit=2", headers=headers)
    ).json()
    assert first["has_more"] and len(first["deliveries"]) == 2
    cursor = first["next_cursor"]
    rest_page = await rest.get(
        f"/v1/webhooks/{hook['webhook_id']}/dead-letters",
        params={"limit": 2, "cursor": cursor},
        headers=headers,
    )
    second = rest_page.json()
    assert not second["has_more"] and "next_cursor" not in second
    dead = first["deliveries"] + second["deliveries"]
    assert {d["task_id"] for d in dead} == set(tasks)
    assert {(d["state"], d["attempts"], d["last_status_code"], d["last_error"]) for d in dead} == {
        ("dead", 1, 500, "HTTP 500")
    }

    delivery_id = dead[0]["delivery_id"]
    path = f"/v1/webhooks/{hook['webhook_id']}/dead-letters/{delivery_id}/redeliver"
    other = make_key(services, "globex")
    assert (await rest.post(path, headers={"X-API-Key": other})).status_code == 404
    again = await rest.post(path, headers=headers)
    assert again.status_code == 202
    assert (again.json()["delivery_id"], again.json()["state"], again.json()["attempts"]) == (
        delivery_id,
        "pending",
        0,
    )
    assert (await rest.post(path, headers=headers)).status_code == 404  # no longer a dead letter
    pending = (await rest.get(f"/v1/webhooks/{hook['webhook_id']}/deliveries", headers=headers)).json()
    assert [d["delivery_id"] for d in pending["deliveries"]] == [delivery_id]
    left = (await rest.get(f"/v1/webhooks/{hook['webhook_id']}/dead-letters", headers=headers)).json()
    assert len(left["deliveries"]) == 2


async def test_a_410_shows_on_the_webhook_until_redelivery(rest, key, services: Services) -> None:
    headers = {"X-API-Key": key}
    hook = await register(rest, key)
    finish_task(services.store)
    fail_all_due(services.store, status_code=410)
    [listed] = (await rest.get("/v1/webhooks", headers=headers)).json()["webhooks"]
    assert listed["disabled_at"] and "410" in listed["disabled_reason"]
    [dead] = (await rest.get(f"/v1/webhooks/{hook['webhook_id']}/dead-letters", headers=headers)).json()[
        "deliveries"
    ]
    path = f"/v1/webhooks/{hook['webhook_id']}/dead-letters/{dead['delivery_id']}/redeliver"
    assert (await rest.post(path, headers=headers)).status_code == 202
    [listed] = (await rest.get("/v1/webhooks", headers=headers)).json()["webhooks"]
    assert "disabled_at" not in listed


async def test_another_tenants_webhook_and_a_bad_cursor(rest, key, services: Services) -> None:
    hook = await register(rest, key)
    other = {"X-API-Key": make_key(services, "globex")}
    for path in ("deliveries", "dead-letters"):
        answer = await rest.get(f"/v1/webhooks/{hook['webhook_id']}/{path}", headers=other)
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "not_found"
    bad = await rest.get(
        f"/v1/webhooks/{hook['webhook_id']}/dead-letters",
        params={"cursor": "1.x"},
        headers={"X-API-Key": key},
    )
    assert bad.status_code == 200  # well-formed: a position before everything
    bad = await rest.get(
        f"/v1/webhooks/{hook['webhook_id']}/dead-letters",
        params={"cursor": "nope"},
        headers={"X-API-Key": key},
    )
    assert bad.status_code == 400
