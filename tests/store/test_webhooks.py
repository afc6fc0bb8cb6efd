from __future__ import annotations

from runtime.store import Store


def test_added_webhooks_are_listed_oldest_first(store: Store) -> None:
    first = store.webhooks.add("tenant-a", "https://a.example/hook", ["task.completed"], "s3cret!!")
    second = store.webhooks.add("tenant-a", "https://b.example/hook", ["task.failed"], "s3cret!!")
    store.webhooks.add("tenant-b", "https://c.example/hook", ["task.completed"], "s3cret!!")
    assert first.webhook_id.startswith("wh_")
    assert store.webhooks.list("tenant-a") == [first, second]
    assert store.webhooks.get("tenant-a", first.webhook_id) == first


def test_delete_removes_only_the_own_tenants_webhook(store: Store) -> None:
    hook = store.webhooks.add("tenant-a", "https://a.example/hook", ["task.completed"], "secret12")
    assert not store.webhooks.delete("tenant-b", hook.webhook_id)
    assert store.webhooks.get("tenant-b", hook.webhook_id) is None
    assert store.webhooks.delete("tenant-a", hook.webhook_id)
    assert not store.webhooks.delete("tenant-a", hook.webhook_id)
    assert store.webhooks.list("tenant-a") == []


def test_for_event_returns_the_subscribed_webhooks_of_the_tenant(store: Store) -> None:
    done = store.webhooks.add(
        "tenant-a", "https://a.example/1", ["task.completed", "task.failed"], "secret12"
    )
    store.webhooks.add("tenant-a", "https://a.example/2", ["task.started"], "secret12")
    store.webhooks.add("tenant-b", "https://b.example/1", ["task.failed"], "secret12")
    assert store.webhooks.for_event("tenant-a", "task.failed") == [done]
    assert store.webhooks.for_event("tenant-a", "task.timeout") == []
