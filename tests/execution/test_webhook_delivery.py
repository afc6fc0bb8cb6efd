"""Webhook deliveries from the store's outbox: body and signatures, retries, dead letters,
410, redirects, and at-least-once across a deliverer that dies (SQLite file and PostgreSQL)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from runtime.execution.reconciler import RECONCILER
from runtime.execution.webhooks import WebhookDeliverer, WebhookSettings
from runtime.execution.webhooks.settings import parse_networks
from runtime.store import NewTask, Store
from runtime.store.coltypes import utc_now
from tests.support.webhook_receiver import Receiver, receiving, wait_until

SECRET = "your-webhook-secret"
FAST = WebhookSettings(
    allowed_networks=parse_networks("127.0.0.1"),
    retry_schedule=(0.1, 0.1),
    timeout_seconds=5.0,
    concurrency=4,
    poll_seconds=0.05,
)


# The reference's own verifier (Grey Distributed API reference, "Signature Verification"), verbatim.
# fmt: off
def verify_webhook(payload, signature, secret):
    expected = hmac.new(
        secret.encode(),
        payload.encode(),
        hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(f"sha256={expected}", signature)
# fmt: on


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as made:
        yield made


@pytest.fixture
def store(threaded_store: Store) -> Store:
    """Threads share it: see `threaded_store` in tests/conftest.py."""
    return threaded_store


def deliverer(store: Store, settings: WebhookSettings = FAST, node: str = "node-a") -> WebhookDeliverer:
    """A deliverer whose process runs `node`, which holds the coordinator lease."""
    assert store.coordination.acquire(RECONCILER, node, utc_now(), 300) is not None
    return WebhookDeliverer(store, settings, lambda: {node})


def run_task(store: Store, status: str = "completed", tenant: str = "acme", **outcome: Any) -> str:
    task = store.tasks.insert(NewTask(tenant_id=tenant, type="stateless", payload={"function": "echo"}))
    assert store.lifecycle.claim(task.task_id, node_id="w", now=utc_now(), queue_time_ms=1) is not None
    if status != "running":
        assert store.lifecycle.transition(
            task.task_id, from_statuses=("running",), to_status=status, completed_at=utc_now(), **outcome
        )
    return task.task_id


def test_a_finished_task_is_delivered_with_the_references_body_and_both_signatures(
    store: Store, receiver: Receiver
) -> None:
    hook = store.webhooks.add("acme", receiver.url(), ["task.started", "task.completed"], SECRET)
    task_id = run_task(store, result={"answer": 42})
    sender = deliverer(store)
    sender.start()
    try:
        wait_until(lambda: len(receiver.received) == 2, what="two deliveries")
        wait_until(lambda: not store.webhooks.deliveries.pending("acme", hook.webhook_id), what="settled")
    finally:
        sender.stop()
    by_event = {json.loads(r.body)["event"]: r for r in receiver.received}
    assert set(by_event) == {"task.started", "task.completed"}
    completed = by_event["task.completed"]
    document = json.loads(completed.body)
    assert document["task"]["task_id"] == task_id
    assert document["task"]["status"] == "completed"
    assert document["task"]["result"] == {"answer": 42}
    assert document["timestamp"].endswith("Z")
    assert json.loads(by_event["task.started"].body)["task"]["status"] == "running"
    assert "result" not in json.loads(by_event["task.started"].body)["task"]
    # The reference's verifier accepts X-Grey-Signature...
    assert completed.headers["X-Grey-Signature"].startswith("sha256=")
    assert verify_webhook(completed.text, completed.headers["X-Grey-Signature"], SECRET)
    assert not verify_webhook(completed.text, completed.headers["X-Grey-Signature"], "another-secret")
    # ...and Standard Webhooks' verifies the other headers: a replay with a changed
    # timestamp, or another body, is refused.
    standard = Webhook(SECRET.encode())
    assert standard.verify(completed.body, completed.headers) == document
    old = str(int(time.time()) - 600)
    with pytest.raises(WebhookVerificationError):
        standard.verify(completed.body, {**completed.headers, "webhook-timestamp": old})
    with pytest.raises(WebhookVerificationError):
        standard.verify(completed.body.replace(b"42", b"43"), completed.headers)
    assert completed.headers["webhook-id"].startswith("msg_")
    assert completed.headers["webhook-id"] != by_event["task.started"].headers["webhook-id"]
    # The Standard Webhooks key is also the secret's bytes in its base64 `whsec_` form.
    whsec = "whsec_" + base64.b64encode(SECRET.encode()).decode()
    assert Webhook(whsec).verify(completed.body, completed.headers) == document


def test_failures_are_retried_on_the_schedule_then_dead_lettered_and_redelivered_as_they_were(
    store: Store, receiver: Receiver
) -> None:
    hook = store.webhooks.add("acme", receiver.url(), ["task.failed"], SECRET)
    run_task(store, status="failed", error={"code": "boom", "message": "it broke"})
    receiver.answer((500, {}), (502, {}), (500, {}))  # the first attempt and both retries
    sender = deliverer(store)
    sender.start()
    try:
        wait_until(
            lambda: store.webhooks.deliveries.dead_letters("acme", hook.webhook_id, 10)[0], what="dead"
        )
        assert len(receiver.received) == 3
        [dead], more = store.webhooks.deliveries.dead_letters("acme", hook.webhook_id, 10)
        assert not more and dead.attempts == 3 and dead.last_status_code == 500
        assert dead.last_error == "HTTP 500"
        assert store.webhooks.deliveries.pending("acme", hook.webhook_id) == []
        first = receiver.received[0]
        assert {r.headers["webhook-id"] for r in receiver.received} == {first.headers["webhook-id"]}
        assert json.loads(first.body)["task"]["error"] == {"code": "boom", "message": "it broke"}

        again = store.webhooks.deliveries.redeliver("acme", hook.webhook_id, dead.delivery_id, utc_now())
        assert again is not None and again.attempts == 0
        wait_until(lambda: len(receiver.received) == 4, what="the redelivery")
        wait_until(lambda: not store.webhooks.deliveries.pending("acme", hook.webhook_id), what="delivered")
    finally:
        sender.stop()
    redelivered = receiver.received[3]
    assert redelivered.body == first.body
    assert redelivered.headers["webhook-id"] == first.headers["webhook-id"]
    assert store.webhooks.deliveries.dead_letters("acme", hook.webhook_id, 10) == ([], False)


def test_retry_after_is_waited_for(store: Store, receiver: Receiver) -> None:
    hook = store.webhooks.add("acme", receiver.url(), ["task.completed"], SECRET)
    run_task(store)
    receiver.answer((503, {"Retry-After": "2"}))
    sender = deliverer(store)
    sender.start()
    try:
        wait_until(lambda: len(receiver.received) == 2, what="the retry")
        wait_until(lambda: not store.webhooks.deliveries.pending("acme", hook.webhook_id), what="delivered")
    finally:
        sender.stop()
    first, second = receiver.received
    assert second.at - first.at >= 1.9  # 2 s asked; the schedule alone says 0.1 s


def test_410_gone_disables_the_webhook_until_a_dead_letter_is_redelivered(
    store: Store, receiver: Receiver
) -> None:
    hook = store.webhooks.add("acme", receiver.url(), ["task.completed"], SECRET)
    run_task(store)
    receiver.answer((410, {}))
    sender = deliverer(store)
    sender.start()
    try:
        wait_until(
            lambda: store.webhooks.deliveries.dead_letters("acme", hook.webhook_id, 10)[0], what="dead"
        )
        assert len(receiver.received) == 1  # not retried
        assert hook.webhook_id in store.webhooks.deliveries.disabled("acme")
        run_task(store)  # disabled: no delivery is even written
        assert store.webhooks.deliveries.pending("acme", hook.webhook_id) == []
        [dead], _ = store.webhooks.deliveries.dead_letters("acme", hook.webhook_id, 10)
        assert store.webhooks.deliveries.redeliver("acme", hook.webhook_id, dead.delivery_id, utc_now())
        assert store.webhooks.deliveries.disabled("acme") == {}
        wait_until(lambda: len(receiver.received) == 2, what="the redelivery")
    finally:
        sender.stop()


def test_a_redirect_is_not_followed(store: Store, receiver: Receiver) -> None:
    elsewhere = Receiver()
    try:
        hook = store.webhooks.add("acme", receiver.url(), ["task.completed"], SECRET)
        run_task(store)
        receiver.answer((307, {"Location": elsewhere.url()}))
        sender = deliverer(store, WebhookSettings(**{**_fields(FAST), "retry_schedule": (60.0,)}))
        sender.start()
        try:
            wait_until(lambda: store.webhooks.deliveries.pending("acme", hook.webhook_id)[0].attempts == 1)
        finally:
            sender.stop()
        [pending] = store.webhooks.deliveries.pending("acme", hook.webhook_id)
        assert pending.last_status_code == 307
        assert pending.last_error is not None and "not followed" in pending.last_error
        assert len(receiver.received) == 1
        assert elsewhere.received == []
    finally:
        elsewhere.close()


def test_a_restarted_coordinator_delivers_what_the_store_holds_and_what_a_dead_one_had_claimed(
    store: Store, receiver: Receiver, tmp_path: Path
) -> None:
    """The outbox is written with the transition: nothing runs meanwhile, nothing is lost.
    A deliverer that dies holding a claim leaves it to expire; the next one sends it again
    with the same webhook-id (at least once)."""
    hook = store.webhooks.add("acme", receiver.url(), ["task.completed"], SECRET)
    lost, kept = run_task(store), run_task(store)
    now = utc_now()
    [claimed] = store.webhooks.deliveries.claim_due(now, 1, until=now + timedelta(seconds=1))  # then "dies"
    with Store.open(store.engine.url) as restarted:  # another process on the same store
        sender = deliverer(restarted, node="node-b")
        sender.start()
        try:
            wait_until(lambda: len(receiver.received) == 2, what="both deliveries")
            wait_until(
                lambda: not restarted.webhooks.deliveries.pending("acme", hook.webhook_id), what="settled"
            )
        finally:
            sender.stop()
    tasks = {json.loads(r.body)["task"]["task_id"] for r in receiver.received}
    assert tasks == {lost, kept}
    assert claimed.delivery_id in {r.headers["webhook-id"] for r in receiver.received}


def test_only_the_coordinators_process_delivers(store: Store, receiver: Receiver) -> None:
    hook = store.webhooks.add("acme", receiver.url(), ["task.completed"], SECRET)
    run_task(store)
    assert store.coordination.acquire(RECONCILER, "node-a", utc_now(), 300) is not None
    other = WebhookDeliverer(store, FAST, lambda: {"node-b"})
    assert other.step() == 0
    assert len(store.webhooks.deliveries.pending("acme", hook.webhook_id)) == 1
    holder = WebhookDeliverer(store, FAST, lambda: {"node-a"})
    assert holder.step() == 1
    holder.stop()


def _fields(settings: WebhookSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in WebhookSettings.__dataclass_fields__}


def test_the_outbox_gets_only_the_tenants_subscribed_events_of_real_transitions(store: Store) -> None:
    mine = store.webhooks.add("acme", "https://a.example/h", ["task.failed", "task.cancelled"], SECRET)
    theirs = store.webhooks.add("globex", "https://b.example/h", ["task.completed", "task.failed"], SECRET)
    run_task(store)  # completed: acme did not subscribe to it
    failed = run_task(store, status="failed")
    assert not store.lifecycle.transition(failed, from_statuses=("running",), to_status="completed")
    pending = store.tasks.insert(NewTask(tenant_id="acme", type="stateless", payload={"function": "echo"}))
    assert store.tasks.cancel("acme", pending.task_id, "no longer needed") is not None
    events = {(d.task_id, d.event) for d in store.webhooks.deliveries.pending("acme", mine.webhook_id)}
    assert events == {(failed, "task.failed"), (pending.task_id, "task.cancelled")}
    assert store.webhooks.deliveries.pending("globex", theirs.webhook_id) == []
