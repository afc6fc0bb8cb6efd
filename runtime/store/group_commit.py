"""Group commit: concurrent writers share one transaction instead of queueing for one each.

SQLite has one writer at a time, and each commit costs a write of every page it touched
(the row, its indexes, the event) whatever the number of rows on those pages. Worker
threads claiming and finishing tasks, and gateway threads inserting them, arrive
together under load. The first writer to find the store free becomes the leader and
commits everything queued so far in one transaction; the others wait for its commit and
return. Alone, a writer commits at once: there is no timer and no extra thread.

Jobs are functions of a `DirectTransaction` with no side effects outside it, so when
one fails the batch is rolled back and each of its jobs is run again in a transaction of
its own: a failure (a duplicate idempotency key, a value its column refuses) reaches its
own caller only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from runtime.store.direct import DirectStatements, DirectTransaction

T = TypeVar("T")

#: At most this many jobs in one transaction (keeps a batch's latency bounded).
MAX_BATCH = 64


class _Job(Generic[T]):
    __slots__ = ("done", "error", "result", "work")

    def __init__(self, work: Callable[[DirectTransaction], T]) -> None:
        self.work = work
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None


class GroupCommit:
    """Runs write jobs, batching those that arrive while another batch commits."""

    def __init__(self, statements: DirectStatements) -> None:
        self._statements = statements
        self._queue: list[_Job[Any]] = []
        self._queue_lock = threading.Lock()
        self._leader = threading.Lock()

    def run(self, work: Callable[[DirectTransaction], T]) -> T:
        """Runs `work` in a committed transaction (perhaps shared) and returns its result."""
        job: _Job[T] = _Job(work)
        with self._queue_lock:
            self._queue.append(job)
        while not job.done:
            with self._leader:  # waits while a leader commits, perhaps this very job
                if job.done:
                    break
                with self._queue_lock:
                    batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                self._commit(batch)
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def _commit(self, batch: list[_Job[Any]]) -> None:
        if len(batch) > 1:
            try:
                with self._statements.transaction() as tx:
                    results = [job.work(tx) for job in batch]
            except Exception:
                pass  # one of them failed: each on its own below, so only its caller sees it
            else:
                for job, result in zip(batch, results, strict=True):
                    job.result, job.done = result, True
                return
        for job in batch:
            try:
                with self._statements.transaction() as tx:
                    job.result = job.work(tx)
            except BaseException as error:
                job.error = error
            finally:
                job.done = True
