"""Broker by URL: `embedded` (in-process), `redis://...`, `amqp://...`.

The embedded broker is Dramatiq's StubBroker: messages live in this process only, which
is enough because the store, not the broker, is the record of every task (a restart
re-enqueues whatever the store holds as unfinished).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis
from dramatiq.middleware import CurrentMessage, Retries

from runtime.execution.queues import IDLE_POLL_MS, priority_of_queue

logger = logging.getLogger("grey.broker")

#: Idle poll ceiling of the delay queues (ms), whatever their priority.
DELAY_QUEUE_POLL_MS = 100

EMBEDDED = ("", "embedded", "stub", "stub://", "memory://")


def broker_kind(url: str) -> str:
    """`embedded`, `redis` or `amqp`; ValueError for anything else."""
    if url in EMBEDDED:
        return "embedded"
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("redis", "rediss", "unix"):
        return "redis"
    if scheme in ("amqp", "amqps"):
        return "amqp"
    raise ValueError(f"unsupported broker URL {url!r}: use embedded, redis://... or amqp://...")


def middleware(retry_when: Any, min_backoff_ms: int, max_backoff_ms: int) -> list[dramatiq.Middleware]:
    """Dramatiq's own pieces that the runtime uses: no TimeLimit (see
    runtime.execution.interrupts for why), no Callbacks or Pipelines (no actor has
    callbacks and no message is piped: each would cost every message a hook call)."""
    return [
        CurrentMessage(),
        Retries(retry_when=retry_when, min_backoff=min_backoff_ms, max_backoff=max_backoff_ms),
    ]


def _redis_broker(url: str, stack: list[dramatiq.Middleware]) -> dramatiq.Broker:
    from dramatiq.brokers.redis import RedisBroker

    class GreyRedisBroker(RedisBroker):
        """Polls urgent queues more often while they are idle (see queues.IDLE_POLL_MS), and
        enqueues a batch of messages in one pipeline (see `enqueue_many`)."""

        _pipelines = threading.local()

        def enqueue_many(self, messages: list[tuple[dramatiq.Message[Any], int | None]]) -> list[Any]:
            """`enqueue` for each (message, delay), the Redis commands sent in one round trip.

            Dramatiq's own `enqueue` prepares each message (its Redis id, its delay queue,
            the before-enqueue hooks); only the dispatch script's call is redirected into
            the pipeline. The after-enqueue hooks run before that round trip: none of the
            runtime's middleware has one.
            """
            with self.client.pipeline(transaction=False) as pipe:
                self._pipelines.current = pipe
                try:
                    sent = [RedisBroker.enqueue(self, message, delay=delay) for message, delay in messages]
                finally:
                    self._pipelines.current = None
                pipe.execute()
            return sent

        def do_enqueue(self, queue_name: str, *args: Any) -> Any:
            pipe = getattr(self._pipelines, "current", None)
            if pipe is None:
                return self._dispatch("enqueue")(queue_name, *args)
            # The arguments of Dramatiq's dispatch script (RedisBroker._dispatch), without
            # its random maintenance run: workers' fetches and acks do that.
            argv = [
                "enqueue",
                current_millis(),
                queue_name,
                self.broker_id,
                self.heartbeat_timeout,
                self.dead_message_ttl,
                0,
                self._max_unpack_size(),
                *args,
            ]
            return self.scripts["dispatch"](args=argv, keys=[self.namespace], client=pipe)

        def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> dramatiq.Consumer:
            ceiling = IDLE_POLL_MS[priority_of_queue(queue_name)]
            if queue_name.endswith(".DQ"):
                # Delay queues hold retries and re-checks (50 ms and more): the worker keeps
                # what it fetched until its time comes, so fast polling buys nothing there
                # and costs a busy worker real CPU (eight idle queues polled ~400 times/s).
                ceiling = DELAY_QUEUE_POLL_MS
            return super().consume(queue_name, prefetch, min(timeout, ceiling))

    # A worker silent for 30 s is offline for Redis, which then hands its unacked messages
    # to others (our own heartbeats re-queue the tasks sooner; duplicates are harmless).
    return GreyRedisBroker(url=url, middleware=stack, heartbeat_timeout=30000)


def open_broker(url: str, stack: list[dramatiq.Middleware]) -> dramatiq.Broker:
    kind = broker_kind(url)
    if kind == "embedded":
        return StubBroker(middleware=stack)
    if kind == "redis":
        return _redis_broker(url, stack)
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    return RabbitmqBroker(url=url, middleware=stack)


def queue_depth(broker: dramatiq.Broker, queues: list[str]) -> int:
    """Messages waiting (not yet fetched by a worker) in these queues."""
    total = 0
    try:
        if isinstance(broker, StubBroker):
            return sum(broker.queues[q].qsize() for q in queues if q in broker.queues)
        client = getattr(broker, "client", None)
        if client is not None:  # Redis: one list of message ids per queue
            namespace = getattr(broker, "namespace", "dramatiq")
            with client.pipeline(transaction=False) as pipe:
                for q in queues:
                    pipe.llen(f"{namespace}:{q}")
                return int(sum(pipe.execute()))
        counts = getattr(broker, "get_queue_message_counts", None)
        if counts is not None:  # RabbitMQ: passive declare answers the ready count
            for q in queues:
                total += counts(q)[0]
    except Exception:  # the figure is informative; never fail health for it
        logger.warning("could not read the queue depth", exc_info=True)
    return total
