"""`estimated_start` of a submit: when its task should start, from the queue ahead of it
and the throughput measured in its pool."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from runtime.config import PRIORITIES
from runtime.store import Store
from runtime.store.coltypes import utc_now

logger = logging.getLogger("grey.estimates")

#: Figures older than this are read again (by the next submit that needs them).
REFRESH_SECONDS = 1.0
#: Throughput is what finished over this window.
WINDOW_SECONDS = 60.0


class StartEstimates:
    """The figures behind `estimated_start`, read from the store at most once per
    `REFRESH_SECONDS` (so a submit almost never reads the store for them); thread-safe.

    The formula, for a task of pool P and priority R submitted at `created_at`::

        ahead(P, R)  = pending tasks of P whose priority is R or more urgent (workers take
                       the most urgent first), at the last measurement
        rate(P)      = tasks of P finished in the last WINDOW_SECONDS / WINDOW_SECONDS
        estimated_start = created_at + ahead(P, R) / rate(P)

    None while rate(P) is 0: nothing of that pool finished within the window, so there is no
    measurement yet (a cold or idle pool, or no worker). `ahead` counts tasks as the last
    measurement saw them, at most REFRESH_SECONDS old; tasks that a tenant's quotas hold back
    count as ahead too, so the estimate errs late.
    """

    def __init__(self, store: Store, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self._store, self._refresh_seconds = store, refresh_seconds
        self._lock = threading.Lock()
        self._measured_at = float("-inf")  # monotonic
        self._pending: dict[tuple[str, str], int] = {}
        self._rates: dict[str, float] = {}

    def stale(self) -> bool:
        return time.monotonic() - self._measured_at > self._refresh_seconds

    def refresh(self) -> None:
        """Blocking: measures the queues and the throughput again (two indexed reads)."""
        if not self._lock.acquire(blocking=False):
            return  # another submit is measuring; the figures at hand will do
        if not self.stale():
            self._lock.release()
            return
        try:
            since = utc_now() - timedelta(seconds=WINDOW_SECONDS)
            finished = self._store.figures.completed_by_pool_since(since)
            self._pending = self._store.figures.pending_by_queue()
            self._rates = {pool: count / WINDOW_SECONDS for pool, count in finished.items()}
        except Exception as error:  # a figure only: the submit it rides on has succeeded
            logger.warning("could not measure queues for estimated_start: %s", error)
            self._rates = {}  # no measurement until the next refresh
        finally:
            self._measured_at = time.monotonic()
            self._lock.release()

    def estimate(self, pool: str, priority: str, created_at: datetime) -> datetime | None:
        """`estimated_start` by the formula above; None with no measurement of the pool."""
        rate = self._rates.get(pool, 0.0)
        if rate <= 0:
            return None
        urgent = PRIORITIES[: PRIORITIES.index(priority) + 1] if priority in PRIORITIES else PRIORITIES
        ahead = sum(self._pending.get((pool, level), 0) for level in urgent)
        return created_at + timedelta(seconds=ahead / rate)
