"""Batched sends call Dramatiq's dispatch script by its hash; a Redis that does not know the
script (restarted, flushed) still gets every message, and its queues' doorbells ring."""

from __future__ import annotations

import dramatiq
import redis

from runtime.execution.brokers.redis import BELL_SUFFIX, redis_broker
from tests.execution.conftest import REDIS_URL, broker_url_for


def test_a_batch_to_a_redis_that_forgot_the_script_is_sent_whole() -> None:
    broker = redis_broker(broker_url_for("redis"), [])
    actor = dramatiq.Actor(
        lambda n: None, broker=broker, actor_name="forgot", queue_name="cpu.high", priority=0, options={}
    )
    broker.scripts["dispatch"].sha = "0" * 40  # a hash this Redis has never loaded
    try:
        sent = broker.enqueue_many([(actor.message(n), None) for n in range(3)])
    finally:
        broker.close()
    client = redis.Redis.from_url(REDIS_URL)
    assert len(sent) == 3
    assert client.llen("dramatiq:cpu.high") == 3
    assert client.llen(f"dramatiq:cpu.high{BELL_SUFFIX}") == 1  # one ring per queue per batch
