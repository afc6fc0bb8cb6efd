"""Broker by URL: `embedded` (in-process), `redis://...`, `amqp://...`.

The embedded broker is Dramatiq's StubBroker: messages live in this process only, which
is enough because the store, not the broker, is the record of every task (a restart
re-enqueues whatever the store holds as unfinished).
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage, Retries

from runtime.execution.brokers.outgoing import Outgoing

logger = logging.getLogger("grey.broker")


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


def open_broker(url: str, stack: list[dramatiq.Middleware]) -> dramatiq.Broker:
    kind = broker_kind(url)
    if kind == "embedded":
        return StubBroker(middleware=stack)
    if kind == "redis":
        from runtime.execution.brokers.redis import redis_broker

        return redis_broker(url, stack)
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    return RabbitmqBroker(url=url, middleware=stack)


def enqueue_many(broker: dramatiq.Broker, outgoing: list[Outgoing]) -> list[Any]:
    """Enqueue each (message, delay): in one round trip where the broker can (Redis), else
    one by one. For each, the enqueued message or the exception its enqueue raised."""
    batched = getattr(broker, "enqueue_many", None)  # GreyRedisBroker
    if batched is not None and len(outgoing) > 1:
        return list(batched(outgoing))
    outcomes: list[Any] = []
    for message, delay in outgoing:
        try:
            outcomes.append(broker.enqueue(message, delay=delay))
        except Exception as error:
            outcomes.append(error)
    return outcomes


def ready_counts(broker: dramatiq.Broker, queues: list[str]) -> dict[str, int]:
    """Per queue, the messages waiting in the broker (not fetched by any worker yet;
    delayed messages are not counted). Raises when the broker cannot answer."""
    if isinstance(broker, StubBroker):
        return {q: broker.queues[q].qsize() if q in broker.queues else 0 for q in queues}
    client = getattr(broker, "client", None)
    if client is not None:  # Redis: one list of message ids per queue
        namespace = getattr(broker, "namespace", "dramatiq")
        with client.pipeline(transaction=False) as pipe:
            for q in queues:
                pipe.llen(f"{namespace}:{q}")
            return {q: int(n) for q, n in zip(queues, pipe.execute(), strict=True)}
    counts = getattr(broker, "get_queue_message_counts", None)
    if counts is not None:  # RabbitMQ: passive declare answers the ready count
        return {q: int(counts(q)[0]) for q in queues}
    raise NotImplementedError(f"no queue depth for {type(broker).__name__}")


def queue_depth(broker: dramatiq.Broker, queues: list[str]) -> int | None:
    """Messages waiting (not yet fetched by a worker) in these queues; None when the broker
    cannot answer (health then says so, rather than failing)."""
    try:
        return sum(ready_counts(broker, queues).values())
    except Exception:
        logger.warning("could not read the queue depth", exc_info=True)
        return None


def remove_worker_middleware(broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
    """Drops what a stopped worker added to the broker: `Worker.start` adds a middleware
    that gives the worker a consumer for every queue declared, and `Worker.stop` leaves it
    there. A pool that consumes again (its node active again) starts a new worker."""
    broker.middleware = [m for m in broker.middleware if getattr(m, "worker", None) is not worker]
