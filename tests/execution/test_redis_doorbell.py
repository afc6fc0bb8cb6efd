"""Doorbells of the Redis broker: a waiting consumer wakes at a send, and a doorbell that
Redis fails (its connection killed, Redis gone) degrades to polling, never to waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import dramatiq
import pytest
import redis

from runtime.execution.brokers.redis import BELL_SUFFIX, GreyRedisBroker, redis_broker
from tests.execution.conftest import REDIS_URL, broker_url_for

#: Longer than any idle poll (<= 0.1 s): a wake within this came from the doorbell or a poll.
PROMPT_SECONDS = 2.0


class _Recorder:
    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self.changed = threading.Condition()

    def __call__(self, n: int) -> None:
        with self.changed:
            self.seen[n] = time.monotonic()
            self.changed.notify_all()

    def wait_for(self, n: int, timeout: float = PROMPT_SECONDS) -> float:
        """Seconds until message `n` ran; fails the test past `timeout`."""
        start = time.monotonic()
        with self.changed:
            assert self.changed.wait_for(lambda: n in self.seen, timeout), f"message {n} did not run"
        return self.seen[n] - start


Running = tuple[GreyRedisBroker, "dramatiq.Actor[[int], None]", _Recorder]


@pytest.fixture
def running() -> Iterator[Running]:
    broker = redis_broker(broker_url_for("redis"), [])
    recorder = _Recorder()
    actor = dramatiq.Actor(
        recorder, broker=broker, actor_name="bell_test", queue_name="cpu.normal", priority=0, options={}
    )
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        yield broker, actor, recorder
    finally:
        worker.stop()
        broker.close()


def _waiting_on_bells(client: redis.Redis) -> list[int]:
    """Ids of the Redis clients blocked on a doorbell now."""
    return [
        int(entry["id"])
        for entry in client.client_list()
        if entry.get("cmd") == "blpop" and entry.get("flags", "").find("b") >= 0
    ]


def test_a_consumer_waiting_on_its_doorbell_wakes_at_a_send(running: Running) -> None:
    broker, actor, recorder = running
    time.sleep(0.5)  # idle: the consumer waits on its doorbell
    client = redis.Redis.from_url(REDIS_URL)
    assert _waiting_on_bells(client), "no consumer waits on a doorbell"
    actor.send(1)
    recorder.wait_for(1)
    assert client.exists(f"{broker.namespace}:cpu.normal{BELL_SUFFIX}") in (0, 1)


def test_killing_the_doorbell_connection_under_a_waiting_consumer_loses_nothing(running: Running) -> None:
    _, actor, recorder = running
    client = redis.Redis.from_url(REDIS_URL)
    for n in range(5):
        time.sleep(0.3)  # the consumer is back waiting on its doorbell
        for client_id in _waiting_on_bells(client):  # as a Redis restart would, for that socket
            client.client_kill_filter(_id=str(client_id))
        actor.send(n)
        recorder.wait_for(n)
    assert sorted(recorder.seen) == list(range(5))


def test_a_doorbell_redis_fails_degrades_to_polling_then_recovers(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker, actor, recorder = running
    failing = threading.Event()
    failing.set()
    waits: list[bool] = []
    real_wait = broker.wait_bell

    def flaky(queue_name: str, seconds: float) -> None:
        waits.append(failing.is_set())
        if failing.is_set():
            time.sleep(seconds)  # a Redis that hangs until the socket times out, then fails
            raise redis.ConnectionError("Redis went away")
        real_wait(queue_name, seconds)

    monkeypatch.setattr(broker, "wait_bell", flaky)
    time.sleep(0.3)
    actor.send(1)  # the doorbell is down: the consumer polls, and finds it
    recorder.wait_for(1)
    failing.clear()  # Redis is back: after BELL_RETRY_SECONDS the consumer waits on it again
    time.sleep(1.5)
    actor.send(2)
    recorder.wait_for(2)
    assert True in waits and waits[-1] is False
