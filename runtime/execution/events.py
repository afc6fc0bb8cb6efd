"""The event bus: a doorbell saying "task X has new events" or "cancel task X".

The events themselves are rows of `task_events`, written in the transaction of each
transition; the bus only wakes whoever waits for them (SSE and gRPC streams, and the
worker that must stop a cancelled task), across processes:

- `redis://` broker: Redis pub/sub on the broker's server;
- PostgreSQL store: LISTEN/NOTIFY;
- otherwise (embedded): in-process only. Streams also re-read the store every
  `POLL_SECONDS`, so no setup depends on a doorbell arriving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable

from sqlalchemy import text

from runtime.store import ChangeListener, Store

logger = logging.getLogger("grey.events")

CHANNEL = "grey_events"  # task doorbells: gateways (streams) listen
CANCEL_CHANNEL = "grey_cancel"  # cancel requests: workers listen
#: Streams re-read the store at least this often, doorbell or not.
POLL_SECONDS = 1.0
#: Task ids per doorbell message at most (PostgreSQL NOTIFY payloads stay under 8000 bytes).
DOORBELL_IDS = 100
#: A Redis publisher waits this long after the first doorbell so that others join its batch.
PUBLISH_LINGER_SECONDS = 0.003


class Watch:
    """One waiter on one task's events, bound to the event loop that created it."""

    def __init__(self, bus: EventBus, task_id: str) -> None:
        self.bus, self.task_id = bus, task_id
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()

    def ring(self) -> None:
        with contextlib.suppress(RuntimeError):  # loop closed: the stream is gone
            self.loop.call_soon_threadsafe(self.event.set)

    def clear(self) -> None:
        self.event.clear()

    async def wait(self, timeout: float | None = None) -> None:
        """Until the doorbell rings or `timeout` (default POLL_SECONDS) passes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), POLL_SECONDS if timeout is None else timeout)

    def close(self) -> None:
        self.bus._unwatch(self)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class EventBus(ChangeListener):
    """In-process delivery; subclasses add a transport between processes."""

    kind = "local"

    def __init__(self) -> None:
        self.origin = uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        self._watches: dict[str, set[Watch]] = {}
        self._cancel_handlers: list[Callable[[str], None]] = []

    # -- lifecycle -----------------------------------------------------------------

    def start(self, tasks: bool = True) -> None:
        """Start listening to other processes (no-op in-process); `tasks=False` (a worker
        process): only to cancel requests, not to every task's doorbell."""

    def stop(self) -> None:
        """Stop listening."""

    # -- publishing ----------------------------------------------------------------

    def after_commit(self, task_id: str) -> None:
        self._deliver("t", task_id)
        self._publish("t", task_id)

    def cancel(self, task_id: str) -> None:
        """Ask whichever worker runs `task_id` to stop it."""
        self._deliver("c", task_id)
        self._publish("c", task_id)

    def _publish(self, kind: str, task_id: str) -> None:
        """Send to other processes (none in-process)."""

    # -- receiving ------------------------------------------------------------------

    def watch(self, task_id: str) -> Watch:
        watch = Watch(self, task_id)
        with self._lock:
            self._watches.setdefault(task_id, set()).add(watch)
        return watch

    def _unwatch(self, watch: Watch) -> None:
        with self._lock:
            watches = self._watches.get(watch.task_id)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._watches[watch.task_id]

    def on_cancel(self, handler: Callable[[str], None]) -> None:
        self._cancel_handlers.append(handler)

    def remove_cancel_handler(self, handler: Callable[[str], None]) -> None:
        if handler in self._cancel_handlers:
            self._cancel_handlers.remove(handler)

    def _deliver(self, kind: str, task_id: str) -> None:
        if kind == "t":
            with self._lock:
                watches = list(self._watches.get(task_id, ()))
            for watch in watches:
                watch.ring()
        elif kind == "c":
            for handler in list(self._cancel_handlers):
                try:
                    handler(task_id)
                except Exception:
                    logger.exception("cancel handler failed for %s", task_id)

    def _received(self, payload: str) -> None:
        origin, _, rest = payload.partition("|")
        kind, _, task_ids = rest.partition("|")
        if origin != self.origin:
            for task_id in task_ids.split(","):
                if task_id:
                    self._deliver(kind, task_id)

    def _encode(self, kind: str, task_ids: Iterable[str]) -> str:
        """One doorbell for several tasks: `origin|kind|id,id,...` (task ids hold no comma)."""
        return f"{self.origin}|{kind}|{','.join(task_ids)}"


class _ListenerBus(EventBus):
    """A bus with a listener thread and a publisher thread (Redis, PostgreSQL).

    Doorbells leave in batches from the publisher thread (one round trip for many), after
    the commit of the events they announce: a listener woken by one always finds them.
    """

    def __init__(self) -> None:
        super().__init__()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.listen_tasks = True
        self._outbox: list[tuple[str, str]] = []  # (kind, task id)
        self._pending = threading.Condition()
        self._publisher: threading.Thread | None = None

    def channels(self) -> list[str]:
        return [CHANNEL, CANCEL_CHANNEL] if self.listen_tasks else [CANCEL_CHANNEL]

    def start(self, tasks: bool = True) -> None:
        if self._publisher is None:
            self._publisher = threading.Thread(
                target=self._publish_loop, name=f"grey-{self.kind}-publish", daemon=True
            )
            self._publisher.start()
        if self._thread is not None:
            return
        self.listen_tasks = tasks
        self._stopped.clear()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"grey-{self.kind}-bus", daemon=True
        )
        self._thread.start()
        ready.wait(timeout=5)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
            self._thread = None
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            with self._pending:
                self._pending.notify()
            publisher.join(timeout=3)

    # -- publishing ----------------------------------------------------------------

    def _publish(self, kind: str, task_id: str) -> None:
        if self._publisher is None:  # not started: publish in the caller's thread
            self._send(self._messages([(kind, task_id)]))
            return
        with self._pending:
            self._outbox.append((kind, task_id))
            self._pending.notify()

    def _messages(self, doorbells: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """(channel, payload) per kind, each task once: a fast task's claim and finish
        often share a batch, and a listener only needs to know that there is news."""
        by_kind: dict[str, dict[str, None]] = {}
        for kind, task_id in doorbells:
            by_kind.setdefault(kind, {})[task_id] = None
        messages = []
        for kind, task_ids in by_kind.items():
            channel = CANCEL_CHANNEL if kind == "c" else CHANNEL
            ids = list(task_ids)
            for start in range(0, len(ids), DOORBELL_IDS):
                messages.append((channel, self._encode(kind, ids[start : start + DOORBELL_IDS])))
        return messages

    def _publish_loop(self) -> None:
        while True:
            with self._pending:
                while not self._outbox and not self._stopped.is_set():
                    self._pending.wait(0.5)
            if not self._stopped.is_set():
                # Let the doorbells of other transitions gather: one round trip for many
                # (under load a lone doorbell per round trip costs the worker real CPU).
                time.sleep(PUBLISH_LINGER_SECONDS)
            with self._pending:
                batch, self._outbox = self._outbox, []
            if batch:
                self._send(self._messages(batch))
            elif self._stopped.is_set():
                return

    def _send(self, messages: list[tuple[str, str]]) -> None:
        """(channel, payload) pairs to every other process; failures are logged, not raised."""
        raise NotImplementedError

    # -- receiving ------------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        while not self._stopped.is_set():
            try:
                self._listen(ready)
            except Exception:
                logger.warning("%s bus listener failed; reconnecting", self.kind, exc_info=True)
                self._stopped.wait(1.0)
            finally:
                ready.set()

    def _listen(self, ready: threading.Event) -> None:
        raise NotImplementedError


class RedisBus(_ListenerBus):
    kind = "redis"

    def __init__(self, url: str) -> None:
        super().__init__()
        import redis

        self._client = redis.Redis.from_url(url)

    def _send(self, messages: list[tuple[str, str]]) -> None:
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for channel, payload in messages:
                    pipe.publish(channel, payload)
                pipe.execute()
        except Exception:
            logger.warning("could not publish %d doorbells", len(messages), exc_info=True)

    def _listen(self, ready: threading.Event) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(*self.channels())
            for _ in self.channels():
                pubsub.get_message(timeout=1.0)  # the subscribe confirmations
            ready.set()
            while not self._stopped.is_set():
                message = pubsub.get_message(timeout=0.1)
                if message is not None and message["type"] == "message":
                    self._received(message["data"].decode())
        finally:
            pubsub.close()


class PostgresBus(_ListenerBus):
    kind = "postgresql"

    def __init__(self, store: Store) -> None:
        super().__init__()
        self._store = store

    def _send(self, messages: list[tuple[str, str]]) -> None:
        try:
            with self._store.engine.begin() as conn:
                for channel, payload in messages:
                    conn.execute(
                        text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload}
                    )
        except Exception:
            logger.warning("could not notify %d doorbells", len(messages), exc_info=True)

    def _listen(self, ready: threading.Event) -> None:
        import psycopg

        url = self._store.engine.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for channel in self.channels():
                conn.execute(f"LISTEN {channel}")
            ready.set()
            while not self._stopped.is_set():
                for notify in conn.notifies(timeout=0.2, stop_after=256):
                    self._received(notify.payload)


def open_bus(broker_url: str, store: Store) -> EventBus:
    """Redis pub/sub with a Redis broker, else NOTIFY with PostgreSQL, else in-process."""
    from runtime.execution.brokers import broker_kind

    if broker_kind(broker_url) == "redis":
        return RedisBus(broker_url)
    if store.engine.dialect.name == "postgresql":
        return PostgresBus(store)
    return EventBus()
