"""Leader/follower batching: callers that arrive together share one round trip.

Used for the store's hot writes (one transaction for many, `runtime.store.group_commit`),
which worker threads make at the same moments under load. A caller queues its item; the
first caller to find no batch in flight becomes the leader and flushes everything queued
so far; the others wait for that flush and return its outcome for their item. Alone, a
caller flushes at once: no timer, no extra thread, and under load the batch grows by
itself to what arrived during the previous flush.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

I = TypeVar("I")  # noqa: E741 - the item, as in the other type variables of this module
R = TypeVar("R")


class _Waiter(Generic[I, R]):
    __slots__ = ("done", "item", "outcome")

    def __init__(self, item: I) -> None:
        self.item = item
        self.done = False
        self.outcome: Any = None


class Batcher(Generic[I, R]):
    """Runs `flush(items) -> outcomes` for batches of callers.

    One outcome per item, in order: its result, or an exception raised to its caller alone.
    """

    def __init__(self, flush: Callable[[list[I]], Sequence[Any]], max_batch: int = 64) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._queue: list[_Waiter[I, R]] = []
        self._queue_lock = threading.Lock()
        self._leader = threading.Lock()

    def run(self, item: I) -> R:
        waiter: _Waiter[I, R] = _Waiter(item)
        with self._queue_lock:
            self._queue.append(waiter)
        while not waiter.done:
            with self._leader:  # waits while a leader flushes, perhaps this very item
                if waiter.done:
                    break
                with self._queue_lock:
                    batch = self._queue[: self._max_batch]
                    del self._queue[: self._max_batch]
                self._run_batch(batch)
        if isinstance(waiter.outcome, BaseException):
            raise waiter.outcome
        return waiter.outcome

    def _run_batch(self, batch: list[_Waiter[I, R]]) -> None:
        try:
            outcomes: Sequence[Any] = self._flush([waiter.item for waiter in batch])
        except BaseException as error:  # the flush as a whole failed: every caller hears of it
            outcomes = [error] * len(batch)
        for waiter, outcome in zip(batch, outcomes, strict=True):
            waiter.outcome, waiter.done = outcome, True

    def locked(self) -> threading.Lock:
        """Held while a batch is flushed (e.g. to close what flushes use)."""
        return self._leader
