"""Liveness of this gateway process, as every API's `/health` reports it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from runtime.services import Services
from runtime.store.errors import is_unavailable
from runtime.store.records import UNFINISHED_STATUSES


@dataclass(frozen=True, slots=True)
class ProcessHealth:
    healthy: bool  # false while the store or the broker cannot be reached: no work can be taken
    version: str
    uptime_seconds: float
    active_tasks: int  # pending + running, all tenants (0 when the store cannot say)


async def process_health(services: Services) -> ProcessHealth:
    try:
        # Only the unfinished statuses: an index range, not a GROUP BY over every task ever run.
        counts = await services.blocking.run(
            services.store.figures.count_by_status, None, UNFINISHED_STATUSES
        )
    except Exception as error:
        if not is_unavailable(error):
            raise
        counts = None
    broker_answers = await services.blocking.run(services.runtime.queue_depth) is not None
    return ProcessHealth(
        healthy=counts is not None and broker_answers,
        version=services.version,
        uptime_seconds=round(time.time() - services.started_at, 3),
        active_tasks=counts.get("running", 0) + counts.get("pending", 0) if counts else 0,
    )
