"""Retention's schedule: the coordinator deletes expired finished tasks, in the background.

The node holding the coordinator lease (runtime.execution.reconciler) pokes this at every
heartbeat; at most every `retention.every_seconds` a pass starts on a thread of its own,
so a long purge never delays heartbeats or the lease's renewal. A pass deletes
`batch_rows` tasks per transaction (runtime.store.retention), pausing
`batch_pause_seconds` between transactions so submits and transitions go on, until every
rule has nothing left; it stops early once this node no longer holds the lease (another
node's pass takes over) or the process stops.

Rules: the tenants with their own age (`retention.tenants`) one by one, then every other
tenant at `finished_days`; `forever` keeps a tenant's tasks (or everyone else's).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from runtime.config import RetentionConfig
from runtime.store import Store
from runtime.store.coltypes import utc_now
from runtime.store.errors import is_unavailable
from runtime.store.retention import Expiry, TaskRetention

logger = logging.getLogger("grey.retention")


def expiries(config: RetentionConfig, now: datetime) -> list[Expiry]:
    """What has expired at `now`, one rule per tenant with its own age, then the rest."""
    rules = []
    for tenant, _ in sorted(config.tenants.items()):
        days = config.days_for(tenant)
        if days is not None:
            rules.append(Expiry(now - timedelta(days=days), tenant_id=tenant))
    default = config.days_for(None)
    if default is not None:
        rules.append(Expiry(now - timedelta(days=default), except_tenants=tuple(sorted(config.tenants))))
    return rules


class RetentionSchedule:
    """Passes of retention on a background thread, one at a time, while `holding()`."""

    def __init__(
        self,
        store: Store,
        config: RetentionConfig,
        holding: Callable[[], bool],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config, self._holding, self._clock = config, holding, clock
        self._retention = TaskRetention(store.engine)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at: float | None = None  # monotonic time of the last pass's start
        self.deleted = 0  # tasks deleted by this process, over every pass

    def poke(self) -> bool:
        """Starts a pass if one is due and none runs; True when one started."""
        now = time.monotonic()
        running = self._thread is not None and self._thread.is_alive()
        due = self._started_at is None or now - self._started_at >= self.config.every_seconds
        if running or not due:
            return False
        self._started_at = now
        self._thread = threading.Thread(target=self._pass, name="grey-retention", daemon=True)
        self._thread.start()
        return True

    def run_pass(self) -> int:
        """One pass in the caller's thread: every rule until it has nothing left; how many
        tasks were deleted. Stops early when the lease is lost or the process stops."""
        deleted = 0
        for expiry in expiries(self.config, self._clock()):
            while self._may_go_on():
                count = self._retention.purge(expiry, self.config.batch_rows)
                deleted += count
                self.deleted += count
                if count < self.config.batch_rows:
                    break
                self._stopping.wait(self.config.batch_pause_seconds)
        return deleted

    def stop(self, timeout: float = 5.0) -> None:
        """The runtime stops: a pass under way ends after its current batch (a later
        start pokes passes again)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._stopping.clear()

    def _may_go_on(self) -> bool:
        return not self._stopping.is_set() and self._holding()

    def _pass(self) -> None:
        try:
            deleted = self.run_pass()
        except Exception as error:
            unavailable = is_unavailable(error)  # the store: the next pass tries again
            level = logging.WARNING if unavailable else logging.ERROR
            name = type(error).__name__
            logger.log(level, "retention pass failed: %s: %s", name, error, exc_info=not unavailable)
            return
        if deleted:
            logger.info("retention: deleted %d expired finished tasks", deleted)
