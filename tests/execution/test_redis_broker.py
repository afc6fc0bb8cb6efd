"""The Redis broker's batched sends, read back by stock Dramatiq; batched doorbells."""

from __future__ import annotations

import threading
import time
from typing import TypedDict

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from runtime.execution.brokers.redis import redis_broker
from runtime.execution.events import CANCEL_CHANNEL, CHANNEL, RedisBus
from tests.execution.conftest import REDIS_URL, broker_url_for


class ActorOptions(TypedDict):
    """The keyword arguments both actors of a test share."""

    actor_name: str
    queue_name: str
    priority: int


def test_enqueue_many_writes_what_a_stock_dramatiq_worker_reads() -> None:
    url = broker_url_for("redis")
    ours = redis_broker(url, [])
    seen: list[int] = []
    done = threading.Event()

    def record(n: int) -> None:
        seen.append(n)
        if len(seen) == 4:
            done.set()

    options = ActorOptions(actor_name="record", queue_name="batch", priority=0)
    sender = dramatiq.Actor(record, broker=ours, options={}, **options)
    messages: list[tuple[dramatiq.Message[None], int | None]] = [
        (sender.message(n), None) for n in range(3)
    ] + [(sender.message(3), 200)]
    sent = ours.enqueue_many(messages)

    client = redis.Redis.from_url(REDIS_URL)
    assert client.llen("dramatiq:batch") == 3
    assert client.llen("dramatiq:batch.DQ") == 1  # the delayed one, on its delay queue
    assert sent[3].options["eta"] >= time.time() * 1000 + 100

    stock = RedisBroker(url=url)
    dramatiq.Actor(record, broker=stock, options={}, **options)
    worker = dramatiq.Worker(stock, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        assert done.wait(10), f"stock worker saw only {seen}"
    finally:
        worker.stop()
        ours.close()
        stock.close()
    assert sorted(seen) == [0, 1, 2, 3]


def test_one_doorbell_names_every_task_with_news_once() -> None:
    bus = RedisBus(REDIS_URL)  # not started: nothing connects
    messages = bus._messages([("t", "task_a"), ("t", "task_b"), ("t", "task_a"), ("c", "task_c")])
    assert messages == [
        (CHANNEL, f"{bus.origin}|t|task_a,task_b"),
        (CANCEL_CHANNEL, f"{bus.origin}|c|task_c"),
    ]
    other = RedisBus(REDIS_URL)
    delivered: list[str] = []
    other._deliver = lambda kind, task_id: delivered.append(f"{kind}:{task_id}")  # type: ignore[method-assign]
    for _, payload in messages:
        other._received(payload)
    assert delivered == ["t:task_a", "t:task_b", "c:task_c"]
