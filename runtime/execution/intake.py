"""Intake: one thread turns the submits waiting at a gateway into rows and messages.

A submit must be in the store and in the broker before it is answered. Done from the
request's own trip to a thread pool, every submit pays a thread hop each way and a
commit and a broker round trip of its own. Here the event loop queues the submit and
awaits a future; the intake thread takes every submit waiting, checks each against the
store, inserts all of them in one transaction and sends all of them in one round trip,
then wakes the event loop once for the whole batch. Alone, a submit is taken at once:
there is no timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from runtime.execution.errors import NotSent
from runtime.store import NewTask, Store, TaskRecord

logger = logging.getLogger("grey.intake")

#: At most this many submits per batch (bounds a batch's latency).
MAX_BATCH = 256


class Checks(Protocol):
    """The submit checks that read the store (runtime.execution.submission.SubmissionChecks)."""

    def needed(self, new: NewTask) -> bool: ...

    def check(self, new: NewTask) -> None: ...


SendMany = Callable[[list[TaskRecord]], list[Any]]
Settled = tuple["asyncio.Future[TaskRecord]", Any]  # a waiting submit and its record or error


@dataclass(slots=True)
class _Submit:
    new: NewTask
    future: asyncio.Future[TaskRecord]
    loop: asyncio.AbstractEventLoop


class Intake:
    def __init__(self, store: Store, send_many: SendMany, checks: Checks) -> None:
        self._store, self._send_many, self._checks = store, send_many, checks
        self._queue: queue.SimpleQueue[_Submit | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def submit(self, new: NewTask) -> TaskRecord:
        """Store `new` as pending and send its message; the store checks first, in the intake
        thread (a refusal refuses this submit alone)."""
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[TaskRecord] = loop.create_future()
        self._queue.put(_Submit(new, future, loop))
        return await future

    def stop(self) -> None:
        """Finishes the submits already queued, then stops the thread."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=10)

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="grey-intake", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [] if first is None else [first]
            stopping = first is None
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
            if batch:
                self._settle(batch, self._outcomes(batch))
            if stopping:
                return

    def _outcomes(self, batch: list[_Submit]) -> list[Any]:
        """For each submit: its record, or the error it is answered with."""
        try:
            outcomes: list[Any] = [self._refusal(submit.new) for submit in batch]  # None: checks passed
            checked = [i for i, outcome in enumerate(outcomes) if outcome is None]
            stored = self._store.tasks.insert_many([batch[i].new for i in checked])
            for index, outcome in zip(checked, stored, strict=True):
                outcomes[index] = outcome
            to_send = [i for i in checked if not isinstance(outcomes[i], Exception)]
            try:
                sent = self._send_many([outcomes[i] for i in to_send])
            except Exception as error:  # the broker refused the whole batch: each is stored
                sent = [error] * len(to_send)
            for index, outcome in zip(to_send, sent, strict=True):
                if isinstance(outcome, Exception):
                    outcomes[index] = _unsent(outcomes[index], outcome)
            return outcomes
        except Exception as error:  # never leave a request waiting
            logger.exception("intake batch of %d failed", len(batch))
            return [error] * len(batch)

    def _refusal(self, new: NewTask) -> Exception | None:
        if not self._checks.needed(new):
            return None
        try:
            self._checks.check(new)
        except Exception as error:
            return error
        return None

    @staticmethod
    def _settle(batch: list[_Submit], outcomes: list[Any]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[TaskRecord], Any]]] = defaultdict(
            list
        )
        for submit, outcome in zip(batch, outcomes, strict=True):
            by_loop[submit.loop].append((submit.future, outcome))
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_resolve, settled)


def _unsent(task: TaskRecord, error: Exception) -> NotSent:
    """Stored but not sent: the row stays pending and the reconciler sends it again.
    The answer names its id, since retrying the submit would make a second task."""
    logger.warning("broker refused %s: %s", task.task_id, error)
    return NotSent(
        "The broker did not take the task; it is stored as pending and will be sent again once "
        "the broker is back (the reconciler re-sends pending work whose message is missing)",
        task_id=task.task_id,
    )


def _resolve(settled: list[Settled]) -> None:
    for future, outcome in settled:
        if future.done():  # the request was cancelled (client gone)
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
