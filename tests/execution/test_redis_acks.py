"""Acks ride on fetches: a worker thread's ack is sent with its queue's next fetch (or when
the consumer goes idle or closes); every processed message leaves Redis, none runs twice,
and a consumer whose prefetch window is full refills it once acks free a quarter of it."""

from __future__ import annotations

import threading
import time

import dramatiq
import redis

from runtime.execution.brokers.redis import redis_broker
from tests.execution.conftest import REDIS_URL, broker_url_for


def _acks_left(client: redis.Redis, queue: str) -> int:
    return sum(int(client.scard(key)) for key in client.keys(f"dramatiq:__acks__.*.{queue}"))


def test_every_message_runs_once_and_leaves_redis() -> None:
    broker = redis_broker(broker_url_for("redis"), [])
    seen: list[int] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        with lock:
            seen.append(n)

    actor = dramatiq.Actor(
        run, broker=broker, actor_name="acks", queue_name="cpu.normal", priority=0, options={}
    )
    count = 300
    broker.enqueue_many([(actor.message(n), None) for n in range(count)])
    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=50)
    worker.start()
    client = redis.Redis.from_url(REDIS_URL)
    try:
        deadline = time.monotonic() + 30
        while len(seen) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        # The last acks go out with the idle consumer's next look (at most an idle poll).
        while _acks_left(client, "cpu.normal") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sorted(seen) == list(range(count))
        assert _acks_left(client, "cpu.normal") == 0
        assert client.hlen("dramatiq:cpu.normal.msgs") == 0
    finally:
        worker.stop(timeout=2000)
        broker.close()


def test_a_closing_consumer_sends_the_acks_it_holds() -> None:
    broker = redis_broker(broker_url_for("redis"), [])
    actor = dramatiq.Actor(
        lambda: None, broker=broker, actor_name="held", queue_name="cpu.low", priority=0, options={}
    )
    broker.enqueue(actor.message())
    consumer = broker.consume("cpu.low", prefetch=4, timeout=50)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        message = next(m for m in iter(consumer) if m is not None)
        consumer.ack(message)
        assert _acks_left(client, "cpu.low") == 1  # held: no round trip of its own
        consumer.close()
        assert _acks_left(client, "cpu.low") == 0
        assert client.hlen("dramatiq:cpu.low.msgs") == 0
    finally:
        broker.close()
