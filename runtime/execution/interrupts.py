"""Stopping a running task: on cancel and at its timeout.

First cooperatively (the task's context is told; `ctx.sleep` / `ctx.progress` raise at
once), then, for code that never checks, by raising an exception in its worker thread
the way Dramatiq's TimeLimit does (`raise_thread_exception`).

Why not TimeLimit itself: its limit covers the whole message, so its exception can land
inside the store transaction that records the outcome, and it cannot be aimed at one task
on request. Here the exception can only be raised while the thread is inside the task
function (`guard`), and one still pending when the function returns is cleared.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from dramatiq.middleware import Interrupt, raise_thread_exception


class Stoppable(Protocol):
    """What the interrupter needs of a running task's context (runtime.execution.functions)."""

    @property
    def deadline(self) -> float: ...

    @property
    def attempt(self) -> int: ...

    def stop(self, reason: str) -> None: ...


logger = logging.getLogger("grey.interrupts")

#: How long cooperative code gets to stop before its thread is interrupted.
GRACE_SECONDS = 0.2


class TaskInterrupted(Interrupt):
    """Base of the exceptions that stop a task function from outside."""


class TaskCancelled(TaskInterrupted):
    """The task was cancelled while it ran."""


class TaskTimedOut(TaskInterrupted):
    """The task ran past its `timeout_seconds`."""


class TaskHandedBack(TaskInterrupted):
    """The worker is shutting down and its grace is over: the attempt goes back to pending."""


#: The exception that stops a task interrupted for each reason (`lost`: a test's crash).
ERRORS: dict[str, type[TaskInterrupted]] = {
    "cancelled": TaskCancelled,
    "timeout": TaskTimedOut,
    "shutdown": TaskHandedBack,
    "lost": TaskTimedOut,
}


@dataclass
class _Running:
    task_id: str
    ctx: Stoppable
    stop_at: float | None = None  # when cooperation is given up on
    reason: str | None = None
    raised: bool = False


def _clear_pending(thread_id: int) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)


class Interrupter:
    """One per worker process: watches the deadlines of running tasks and stops cancelled ones."""

    def __init__(self, interval: float = 0.05) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._running: dict[int, _Running] = {}
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="grey-interrupter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def running_task_ids(self) -> list[str]:
        with self._lock:
            return sorted({entry.task_id for entry in self._running.values()})

    def running_attempts(self) -> list[tuple[str, int]]:
        """(task id, attempt) of every task running here: the leases this worker renews."""
        with self._lock:
            return sorted({(entry.task_id, entry.ctx.attempt) for entry in self._running.values()})

    @contextmanager
    def guard(self, task_id: str, ctx: Stoppable) -> Iterator[None]:
        """The span in which this thread may be interrupted: the task function only."""
        thread_id = threading.get_ident()
        with self._lock:
            self._running[thread_id] = _Running(task_id, ctx)
        try:
            yield
        finally:
            while True:
                try:
                    with self._lock:
                        self._running.pop(thread_id, None)
                        _clear_pending(thread_id)
                    break
                except TaskInterrupted:  # delivered while leaving: the outcome stands
                    continue

    def interrupt(self, task_id: str, reason: str) -> bool:
        """Stop every running part of `task_id` (`cancelled`, `timeout`, `shutdown`, `lost`)."""
        found = False
        now = time.monotonic()
        with self._lock:
            for entry in self._running.values():
                if entry.task_id == task_id and entry.reason is None:
                    entry.reason, entry.stop_at = reason, now + GRACE_SECONDS
                    entry.ctx.stop(reason)
                    found = True
        return found

    def _watch(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._tick(time.monotonic())
            except Exception:  # pragma: no cover - keep watching whatever happens
                logger.exception("interrupter tick failed")

    def _tick(self, now: float) -> None:
        with self._lock:
            for thread_id, entry in self._running.items():
                if entry.reason is None and now >= entry.ctx.deadline:
                    entry.reason, entry.stop_at = "timeout", now + GRACE_SECONDS
                    entry.ctx.stop("timeout")
                elif entry.stop_at is not None and now >= entry.stop_at and not entry.raised:
                    entry.raised = True
                    raise_thread_exception(thread_id, ERRORS.get(entry.reason or "", TaskTimedOut))
