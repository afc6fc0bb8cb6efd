"""Dramatiq's Redis broker, able to send a batch of messages in one round trip.

A gateway's intake sends every waiting submit at once (`runtime.execution.intake`), and
`enqueue_many` sends such a batch in one pipelined round trip. Each command is still
Dramatiq's own dispatch script with the arguments Dramatiq gives it
(`RedisBroker._dispatch`): the data in Redis is exactly what the stock broker writes and
reads, and stock workers share it. (Batching acks the same way was
tried and measured: workers' acks seldom coincide, and it gained nothing.)

Also: urgent queues are polled more often while idle (see queues.IDLE_POLL_MS).
"""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis

from runtime.execution.brokers.outgoing import Outgoing
from runtime.execution.queues import IDLE_POLL_MS, priority_of_queue

#: Idle poll ceiling of the delay queues (ms), whatever their priority.
DELAY_QUEUE_POLL_MS = 100


class GreyRedisBroker(RedisBroker):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._pipelines = threading.local()

    # -- sending ---------------------------------------------------------------------------

    def enqueue_many(self, messages: list[Outgoing]) -> list[Any]:
        """`enqueue` for each (message, delay), the Redis commands sent in one round trip.

        Dramatiq's own `enqueue` prepares each message (its Redis id, its delay queue, the
        before-enqueue hooks); only the dispatch script's call goes into the pipeline. The
        after-enqueue hooks run before that round trip: no middleware of the runtime has one.
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
        return self._dispatch_in(pipe, "enqueue", queue_name, *args)

    def _dispatch_in(self, pipe: Any, command: str, queue_name: str, *args: Any) -> Any:
        """Dramatiq's dispatch script call (RedisBroker._dispatch) queued in a pipeline;
        without its random maintenance run, which the fetches of workers still do."""
        argv = [
            command,
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

    # -- consuming -------------------------------------------------------------------------

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> dramatiq.Consumer:
        ceiling = IDLE_POLL_MS[priority_of_queue(queue_name)]
        if queue_name.endswith(".DQ"):
            # Delay queues hold retries and re-checks (50 ms and more): the worker keeps
            # what it fetched until its time comes, so fast polling buys nothing there
            # and costs a busy worker real CPU (eight idle queues polled ~400 times/s).
            ceiling = DELAY_QUEUE_POLL_MS
        return super().consume(queue_name, prefetch, min(timeout, ceiling))


def redis_broker(url: str, stack: list[dramatiq.Middleware]) -> GreyRedisBroker:
    # A worker silent for 30 s is offline for Redis, which then hands its unacked messages
    # to others (our own heartbeats re-queue the tasks sooner; duplicates are harmless).
    return GreyRedisBroker(url=url, middleware=stack, heartbeat_timeout=30000)
