"""The cluster-event feed of one gateway process: what /ws/telemetry and the dashboard's
live socket receive.

Events are rows of `cluster_events` (runtime/store/cluster_events.py), written by triggers
in whichever process changed a task or node, so every gateway process reads the same
sequence: a poller (running only while a connection is open) reads the rows above its
cursor every `poll_seconds` and hands each to the subscribers allowed to see it (task
events: the task's tenant; worker events: everyone) and wanting it: the feed records every
task type, and a subscriber may pass a filter (CloudAI's: container tasks, its own kinds),
so what it does not want never takes room in its queue. A subscriber's queue is bounded:
one that falls `queue_size` messages behind is marked overflowed, and its connection closes.

A reconnecting client names the last `seq` it saw and gets what followed from the
retained rows; when those no longer reach back that far, it is told to resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from runtime.services.blocking import BlockingPool
from runtime.store import ClusterEventRecord, Store

logger = logging.getLogger("grey.telemetry")

T = TypeVar("T")


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    value = float(raw)
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}")
    return value


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    interval_seconds: float = 5.0  # GREY_CLOUDAI_TELEMETRY_INTERVAL_SECONDS: telemetry_update
    poll_seconds: float = 0.05  # GREY_TELEMETRY_POLL_SECONDS: how often new events are read
    queue_size: int = 256  # GREY_TELEMETRY_QUEUE_MESSAGES: per connection, then it is closed
    # PostgreSQL hands out sequence numbers before commit: a gap may fill in a moment later
    # (a transaction still committing) or never (one rolled back). Wait this long for it.
    gap_wait_seconds: float = 0.5

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TelemetrySettings:
        env = os.environ if env is None else env
        return cls(
            interval_seconds=_number(env, "GREY_CLOUDAI_TELEMETRY_INTERVAL_SECONDS", 5.0, 0.05),
            poll_seconds=_number(env, "GREY_TELEMETRY_POLL_SECONDS", 0.05, 0.005),
            queue_size=int(_number(env, "GREY_TELEMETRY_QUEUE_MESSAGES", 256, 4)),
        )


@dataclass(frozen=True, slots=True)
class Resync:
    """The events after `since` are no longer all retained: the client missed some."""

    since: int
    oldest: int  # the oldest seq still retained (0: none)


Item = ClusterEventRecord | Resync
#: Which of the events its tenant may see a subscriber wants (None: all of them).
EventFilter = Callable[[ClusterEventRecord], bool]


class Subscriber:
    """One connection's bounded queue of events (and the sequence it has reached)."""

    def __init__(
        self, tenant_id: str, queue_size: int, last_seq: int, wants: EventFilter | None = None
    ) -> None:
        self.tenant_id = tenant_id
        self.wants = wants
        self.queue: asyncio.Queue[Item] = asyncio.Queue(queue_size)
        self.last_seq = last_seq  # the newest event handed to this subscriber (or skipped)
        self.overflowed = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    def sees(self, event: ClusterEventRecord) -> bool:
        """Whether the event is the tenant's (or everyone's) and one this subscriber wants."""
        if event.tenant_id is not None and event.tenant_id != self.tenant_id:
            return False
        return self.wants is None or self.wants(event)

    def offer(self, item: Item) -> None:
        """Queue `item`; a full queue marks the subscriber overflowed (its reader is too slow)."""
        if isinstance(item, ClusterEventRecord):
            if item.seq <= self.last_seq:
                return
            self.last_seq = item.seq
            if not self.sees(item):
                return
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed.set()


class TelemetryHub:
    """Subscribers of this process, the poller that feeds them, and a short-lived cache of
    the snapshots periodic updates are built from (one query per interval, not per client)."""

    def __init__(self, store: Store, blocking: BlockingPool, settings: TelemetrySettings) -> None:
        self.store = store
        self.blocking = blocking
        self.settings = settings
        self.subscribers: set[Subscriber] = set()
        self.cursor: int | None = None  # the newest seq this process has read
        self._lock = asyncio.Lock()  # fan-out and replay in seq order
        self._poller: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._gap_since: float | None = None
        self._cursor_exact = False  # whether `cursor` is the sequence's last number handed out
        self._cache: dict[str, tuple[float, Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- subscribing -----------------------------------------------------------------

    async def subscribe(
        self, tenant_id: str, since: int | None = None, wants: EventFilter | None = None
    ) -> Subscriber:
        """A subscriber of the tenant (of the events `wants` accepts, if given); with `since`,
        first what followed that seq (or a `Resync` when the retained events do not reach
        back to it)."""
        self._bind()
        async with self._lock:
            cursor = self.cursor if self.cursor is not None else await self._start_cursor()
            start = cursor if since is None else min(since, cursor)
            subscriber = Subscriber(tenant_id, self.settings.queue_size, start, wants)
            if since is not None and since < cursor:
                await self._replay(subscriber, since)
            self.subscribers.add(subscriber)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll(), name="grey-telemetry")
        return subscriber

    async def _replay(self, subscriber: Subscriber, since: int) -> None:
        cursor = self.cursor or 0
        oldest, _ = await self.blocking.run(self.store.cluster_events.bounds)
        # Room for live events after the replay: at most half the queue is replayed.
        budget = max(1, self.settings.queue_size // 2)
        missed = await self.blocking.run(self.store.cluster_events.after, since, cursor - since)
        missed = [event for event in missed if event.seq <= cursor]
        lost = oldest == 0 or oldest > since + 1
        visible = [event for event in missed if subscriber.sees(event)]
        if len(visible) > budget:
            lost, missed = True, [e for e in missed if e.seq >= visible[-budget].seq]
        if lost:
            subscriber.offer(Resync(since, oldest))
        for event in missed:
            subscriber.offer(event)
        subscriber.last_seq = max(subscriber.last_seq, cursor)

    async def _start_cursor(self) -> int:
        """The newest seq retained; with none retained the sequence's next number is not
        known, so the first event read is not taken for a gap."""
        cursor = (await self.blocking.run(self.store.cluster_events.bounds))[1]
        self.cursor, self._cursor_exact = cursor, cursor > 0
        return cursor

    def _bind(self) -> None:
        """One event loop serves a process; should another take over (tests: one per
        client), the poller and the primitives start afresh on it."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self._loop = loop
        self._lock, self._wake, self._poller = asyncio.Lock(), asyncio.Event(), None
        self.subscribers = {s for s in self.subscribers if s.loop is loop}

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def wake(self) -> None:
        """Read now rather than at the next poll (an event-bus doorbell)."""
        self._wake.set()

    # -- the poller ------------------------------------------------------------------

    async def _poll(self) -> None:
        while self.subscribers:
            try:
                await self.poll_once()
            except Exception:
                logger.warning("telemetry poll failed; retrying", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)
            self._wake.clear()

    async def poll_once(self) -> int:
        """Reads the events above the cursor and fans them out; how many were delivered."""
        async with self._lock:
            cursor = self.cursor if self.cursor is not None else await self._start_cursor()
            rows = await self.blocking.run(self.store.cluster_events.after, cursor)
            delivered = 0
            now = time.monotonic()
            for event in rows:
                if event.seq > cursor + 1 and self._cursor_exact:  # a transaction may still commit it
                    if self._gap_since is None:
                        self._gap_since = now
                    if now - self._gap_since < self.settings.gap_wait_seconds:
                        break
                self._gap_since, self._cursor_exact = None, True
                self.cursor = cursor = event.seq
                for subscriber in list(self.subscribers):
                    subscriber.offer(event)
                delivered += 1
        return delivered

    # -- snapshots -------------------------------------------------------------------

    async def cached(self, key: str, build: Callable[[], Awaitable[T]], max_age: float) -> T:
        """`build()`'s value, shared by every connection for `max_age` seconds."""
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < max_age:
            value: T = hit[1]
            return value
        value = await build()
        self._cache[key] = (now, value)
        return value

    async def close(self) -> None:
        self.subscribers.clear()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller
