"""Group commit: concurrent writers share one transaction instead of queueing for one each.

SQLite has one writer at a time, and each commit costs a write of every page it touched
(the row, its indexes, the event) whatever the number of rows on those pages. Worker
threads claiming and finishing tasks, and gateway threads inserting them, arrive
together under load; `runtime.store.batching.Batcher` lets the first of them commit the work
of all in one transaction.

Jobs are functions of a `DirectTransaction` with no side effects outside it, so when
one fails the batch is rolled back and each of its jobs is run again in a transaction of
its own: a failure (a duplicate idempotency key, a value its column refuses) reaches its
own caller only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from runtime.store.batching import Batcher
from runtime.store.direct import DirectStatements, DirectTransaction

T = TypeVar("T")
Job = Callable[[DirectTransaction], Any]


class GroupCommit:
    """Runs write jobs, batching those that arrive while another batch commits."""

    def __init__(self, statements: DirectStatements) -> None:
        self._statements = statements
        self._batcher: Batcher[Job, Any] = Batcher(self._commit)

    def run(self, work: Callable[[DirectTransaction], T]) -> T:
        """Runs `work` in a committed transaction (perhaps shared) and returns its result."""
        result: T = self._batcher.run(work)
        return result

    def run_many(self, works: list[Job]) -> list[Any]:
        """Runs these jobs in one transaction when none fails; for each, its result or its
        exception (for one caller with many jobs, e.g. the gateway's intake)."""
        with self._batcher.locked():  # as a leader would: one batch at a time
            return self._commit(works)

    def close(self) -> None:
        with self._batcher.locked():
            self._statements.close()

    def _commit(self, jobs: list[Job]) -> list[Any]:
        if len(jobs) > 1:
            try:
                with self._statements.transaction() as tx:
                    return [job(tx) for job in jobs]
            except Exception:
                pass  # one of them failed: each on its own below, so only its caller sees it
        outcomes: list[Any] = []
        for job in jobs:
            try:
                outcomes.append(self._alone(job))
            except Exception as error:
                outcomes.append(error)
        return outcomes

    def _alone(self, job: Job) -> Any:
        """One job in its own transaction, once more on a new connection if the old one died."""
        try:
            with self._statements.transaction() as tx:
                return job(tx)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
        with self._statements.transaction() as tx:
            return job(tx)
