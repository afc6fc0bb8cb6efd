"""Dramatiq's Redis broker, able to send a batch of messages in one round trip.

A gateway's intake sends every waiting submit at once (`runtime.execution.intake`), and
`enqueue_many` sends such a batch in one pipelined round trip. Each command is still
Dramatiq's own dispatch script with the arguments Dramatiq gives it
(`RedisBroker._dispatch`): the data in Redis is exactly what the stock broker writes and
reads, and stock workers share it.

Acks: a worker thread does not send its message's ack itself (a round trip per task); the
ack waits in the broker and goes out in the same round trip as its queue's next fetch, or
when the consumer goes idle or closes (`defer_ack`). (Batching the acks of threads that
happen to ack together was tried and gained nothing: they seldom coincide.)

Doorbells: a consumer that finds its queue empty waits on the queue's doorbell (a Redis
list, `BLPOP`) instead of sleeping through its idle poll; whoever sends to the queue rings
it in the same round trip as the message. A doorbell is only a hint (the message is in
the queue either way): a ring nobody hears costs one extra fetch, a missed one at most
the idle poll of today (queues.IDLE_POLL_MS, the longest a consumer waits). The wait runs
on a client of its own with short timeouts and no retries; when Redis fails it, the
consumer sleeps like a stock one and tries its doorbell again after `BELL_RETRY_SECONDS`,
so a Redis restart never leaves a consumer waiting on a dead connection.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import compute_backoff, current_millis
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError
from redis.retry import Retry

from runtime.execution.brokers.outgoing import Outgoing
from runtime.execution.queues import IDLE_POLL_MS, priority_of_queue

logger = logging.getLogger("grey.broker")

#: Idle poll ceiling of the delay queues (ms), whatever their priority.
DELAY_QUEUE_POLL_MS = 100
#: A doorbell key: the queue's key with this suffix (`dramatiq:cpu.normal.bell`).
BELL_SUFFIX = ".bell"
#: A doorbell holds at most this many rings (one wakes one waiting consumer), and is
#: forgotten this long after its last ring.
BELL_RINGS, BELL_TTL_MS = 4, 60_000
#: After Redis failed a doorbell wait, consumers poll (as stock Dramatiq) this long.
BELL_RETRY_SECONDS = 1.0
#: The doorbell client's socket timeouts (s): a wait is at most an idle poll (<= 0.1 s),
#: so a Redis that hangs or vanishes is noticed within this, never waited on for ever.
BELL_SOCKET_TIMEOUT = 1.0


def bell_key(namespace: str, queue_name: str) -> str:
    return f"{namespace}:{queue_name}{BELL_SUFFIX}"


def _rings(queue_name: str) -> bool:
    """Delay queues have no doorbell: their messages wait for their time anyway."""
    return not queue_name.endswith(".DQ")


class GreyRedisBroker(RedisBroker):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._pipelines = threading.local()
        # Acks taken by worker threads, sent with their queue's next fetch (see `fetch`).
        self._acks: dict[str, list[str]] = {}
        self._acks_lock = threading.Lock()
        kwargs = dict(self.client.connection_pool.connection_kwargs)
        kwargs.update(socket_timeout=BELL_SOCKET_TIMEOUT, socket_connect_timeout=BELL_SOCKET_TIMEOUT)
        kwargs["retry"] = Retry(NoBackoff(), 0)
        # Waits block a connection each: a pool of their own, failing fast (no retries).
        self.bell_client = redis.Redis(
            connection_pool=redis.ConnectionPool(
                connection_class=self.client.connection_pool.connection_class, **kwargs
            )
        )

    # -- sending ---------------------------------------------------------------------------

    def enqueue_many(self, messages: list[Outgoing]) -> list[Any]:
        """`enqueue` for each (message, delay), the Redis commands sent in one round trip.

        Dramatiq's own `enqueue` prepares each message (its Redis id, its delay queue, the
        before-enqueue hooks); only the dispatch script's call goes into the pipeline. The
        after-enqueue hooks run before that round trip: no middleware of the runtime has one.
        The script is called by its hash alone (a pipeline that registers it would ask Redis
        whether it knows it first: a round trip more per batch); a Redis that has forgotten
        it (restarted) refuses those calls, which are then sent again the stock way.
        """
        with self.client.pipeline(transaction=False) as pipe:
            self._pipelines.current, self._pipelines.calls = pipe, []
            try:
                sent = [RedisBroker.enqueue(self, message, delay=delay) for message, delay in messages]
                calls: list[tuple[Any, ...]] = self._pipelines.calls
            finally:
                self._pipelines.current = self._pipelines.calls = None
            for queue_name in sorted({message.queue_name for message in sent}):
                self._ring_in(pipe, queue_name)
            results = pipe.execute(raise_on_error=False)
        dispatched = results[: len(calls)]  # then the rings: hints, whose failure is no send's
        for call, result in zip(calls, dispatched, strict=True):
            if isinstance(result, NoScriptError):
                self._dispatch("enqueue")(*call)
        failed = [r for r in dispatched if isinstance(r, Exception) and not isinstance(r, NoScriptError)]
        if failed:
            raise failed[0]
        return sent

    def do_enqueue(self, queue_name: str, *args: Any) -> Any:
        pipe = getattr(self._pipelines, "current", None)
        if pipe is None:
            sent = self._dispatch("enqueue")(queue_name, *args)
            self.ring(queue_name)
            return sent
        self._pipelines.calls.append((queue_name, *args))
        return self._dispatch_in(pipe, "enqueue", queue_name, *args)

    # -- doorbells -------------------------------------------------------------------------

    def ring(self, queue_name: str) -> None:
        """Wakes a consumer of `queue_name` waiting on its doorbell; a hint: a failure is
        the message's own send's business (it went out already), so it is only logged."""
        if not _rings(queue_name):
            return
        try:
            with self.client.pipeline(transaction=False) as pipe:
                self._ring_in(pipe, queue_name)
                pipe.execute()
        except redis.RedisError as error:
            logger.debug("could not ring the doorbell of %s: %s", queue_name, error)

    def _ring_in(self, pipe: Any, queue_name: str) -> None:
        if not _rings(queue_name):
            return
        key = bell_key(self.namespace, queue_name)
        pipe.lpush(key, 1)
        pipe.ltrim(key, 0, BELL_RINGS - 1)
        pipe.pexpire(key, BELL_TTL_MS)

    def wait_bell(self, queue_name: str, seconds: float) -> None:
        """Until `queue_name`'s doorbell rings or `seconds` pass; raises redis errors."""
        self.bell_client.blpop([bell_key(self.namespace, queue_name)], timeout=seconds)

    def _dispatch_in(self, pipe: Any, command: str, queue_name: str, *args: Any, maintenance: int = 0) -> Any:
        """Dramatiq's dispatch script call (RedisBroker._dispatch) queued in a pipeline;
        without its random maintenance run unless asked (fetches: as stock Dramatiq's)."""
        argv = [
            command,
            current_millis(),
            queue_name,
            self.broker_id,
            self.heartbeat_timeout,
            self.dead_message_ttl,
            maintenance,
            self._max_unpack_size(),
            *args,
        ]
        return pipe.evalsha(self.scripts["dispatch"].sha, 1, self.namespace, *argv)

    # -- acks ride on fetches ----------------------------------------------------------------

    def defer_ack(self, queue_name: str, redis_message_id: str) -> None:
        """A processed message's ack, sent with the queue's next fetch (or when its consumer
        goes idle or closes) instead of in a round trip of its own from the worker thread.

        The task's outcome is in the store before its message is acked, so an ack that
        never reaches Redis (the process dies first) costs at most a redelivery, which the
        store's conditional claim skips: at-least-once as before."""
        with self._acks_lock:
            self._acks.setdefault(queue_name, []).append(redis_message_id)

    def _take_acks(self, queue_name: str) -> list[str]:
        with self._acks_lock:
            return self._acks.pop(queue_name, [])

    def _put_back_acks(self, queue_name: str, acks: list[str]) -> None:
        if acks:
            with self._acks_lock:
                self._acks[queue_name] = acks + self._acks.get(queue_name, [])

    def fetch(self, queue_name: str, count: int) -> list[Any]:
        """Dramatiq's fetch of up to `count` messages, the queue's waiting acks sent before
        it in the same round trip (`flush_acks` when `count` is 0). A Redis that has
        forgotten the script (restarted) refuses the calls, which then go the stock way;
        on a connection error the acks wait for the next try."""
        acks = self._take_acks(queue_name)
        if not acks:
            return list(self.do_fetch(queue_name, count)) if count else []
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for redis_message_id in acks:
                    self._dispatch_in(pipe, "ack", queue_name, redis_message_id)
                if count:
                    maintenance = self._should_do_maintenance("fetch")
                    self._dispatch_in(pipe, "fetch", queue_name, count, maintenance=maintenance)
                results = pipe.execute(raise_on_error=False)
        except redis.ConnectionError:
            self._put_back_acks(queue_name, acks)
            raise
        if any(isinstance(result, NoScriptError) for result in results):
            for redis_message_id in acks:
                self.do_ack(queue_name, redis_message_id)
            return list(self.do_fetch(queue_name, count)) if count else []
        failed = [result for result in results if isinstance(result, Exception)]
        if failed:
            raise failed[0]
        return list(results[-1]) if count else []

    def flush_acks(self, queue_name: str) -> None:
        self.fetch(queue_name, 0)

    # -- consuming -------------------------------------------------------------------------

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> dramatiq.Consumer:
        ceiling = IDLE_POLL_MS[priority_of_queue(queue_name)]
        if queue_name.endswith(".DQ"):
            # Delay queues hold retries and re-checks (50 ms and more): the worker keeps
            # what it fetched until its time comes, so fast polling buys nothing there
            # and costs a busy worker real CPU (eight idle queues polled ~400 times/s).
            ceiling = DELAY_QUEUE_POLL_MS
        return _BellConsumer(self, queue_name, prefetch, min(timeout, ceiling))

    def close(self) -> None:
        super().close()
        self.bell_client.connection_pool.disconnect()


class _BellConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer, waiting on its queue's doorbell instead of sleeping when
    it finds nothing to fetch (see the module's docstring), and on its worker threads when
    its prefetch window is full.

    A full window (`prefetch` messages fetched and not yet acked): the stock consumer
    sleeps 5 ms doubling up to its idle poll (20-100 ms) between looks, so under load the
    worker threads drain the messages it handed out and then wait for its next look with
    nothing to run. This one sleeps until acks have freed a quarter of the window
    (`_refill_at`; at most the idle poll), then fetches that many in one round trip: the
    work queue is refilled while threads still have messages to run. What is fetched,
    acked and requeued is the stock consumer's.
    """

    def __init__(self, broker: GreyRedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        self._bell_broken_until = 0.0 if _rings(queue_name) else float("inf")
        self._refill_at = prefetch - max(1, prefetch // 4)
        self._window = threading.Event()  # set when acks free the window down to _refill_at

    def ack(self, message: Any) -> None:
        # The current queue (a delayed message is acked on the delay queue), as stock.
        self.broker.defer_ack(self.queue_name, message.options["redis_message_id"])
        self.queued_message_ids.discard(message.message_id)
        self._freed()

    def nack(self, message: Any) -> None:
        try:
            super().nack(message)
        finally:
            self._freed()

    def _freed(self) -> None:
        if self.outstanding_message_count <= self._refill_at:
            self._window.set()

    def __next__(self) -> Any:
        if self.message_cache:
            return super().__next__()  # from the cache
        if self.outstanding_message_count >= self.prefetch:
            # Cleared, then checked: an ack between the two is seen by the check.
            self._window.clear()
            if self.outstanding_message_count > self._refill_at:
                self._window.wait(self.timeout / 1000)
            return None  # the consumer thread's loop comes back at once
        try:
            self.message_cache = self.broker.fetch(
                self.queue_name, self.prefetch - self.outstanding_message_count
            )
        except redis.ConnectionError as error:
            raise dramatiq.ConnectionClosed(error) from None
        if self.message_cache:
            return super().__next__()
        self._idle()
        return None

    def close(self) -> None:
        """Sends the acks still waiting (a stopping worker's last messages)."""
        try:
            self.broker.flush_acks(self.queue_name)
        except redis.RedisError as error:  # redelivered once the broker notices: harmless
            logger.warning("could not send the acks of %s: %s", self.queue_name, error)
        super().close()

    def _idle(self) -> None:
        try:  # acks taken since the fetch that found nothing: not held through the wait
            self.broker.flush_acks(self.queue_name)
        except redis.ConnectionError as error:
            raise dramatiq.ConnectionClosed(error) from None
        self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.timeout)
        if time.monotonic() >= self._bell_broken_until:
            try:
                self.broker.wait_bell(self.queue_name, self.timeout / 1000)
                return
            except redis.RedisError as error:
                logger.warning(
                    "doorbell of %s failed (%s); polling for %.0f s",
                    self.queue_name,
                    type(error).__name__,
                    BELL_RETRY_SECONDS,
                )
                self._bell_broken_until = time.monotonic() + BELL_RETRY_SECONDS
        time.sleep(backoff_ms / 1000)


def redis_broker(url: str, stack: list[dramatiq.Middleware]) -> GreyRedisBroker:
    # A worker silent for 30 s is offline for Redis, which then hands its unacked messages
    # to others (our own heartbeats re-queue the tasks sooner; duplicates are harmless).
    return GreyRedisBroker(url=url, middleware=stack, heartbeat_timeout=30000)
