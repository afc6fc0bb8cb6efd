"""The `webhooks` operations (REST only: they have no gRPC method)."""

from __future__ import annotations

from tests.support.platform import make_key


async def test_webhooks_create_list_delete_and_hide_the_secret(rest, key, services) -> None:
    headers = {"X-API-Key": key}
    body = {"url": "https://example.test/hook", "events": ["task.completed"], "secret": "s3cret-value"}
    created = await rest.post("/v1/webhooks", json=body, headers=headers)
    assert created.status_code == 201
    webhook = created.json()
    assert "secret" not in webhook
    listed = (await rest.get("/v1/webhooks", headers=headers)).json()["webhooks"]
    assert [w["webhook_id"] for w in listed] == [webhook["webhook_id"]]
    other = make_key(services, "globex")
    assert (
        await rest.delete(f"/v1/webhooks/{webhook['webhook_id']}", headers={"X-API-Key": other})
    ).status_code == 404
    deleted = await rest.delete(f"/v1/webhooks/{webhook['webhook_id']}", headers=headers)
    assert deleted.status_code == 204
    assert (await rest.get("/v1/webhooks", headers=headers)).json()["webhooks"] == []
