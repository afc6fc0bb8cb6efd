"""What every API's task handlers do, whichever contract they speak: one runtime beneath.

A task is a task whichever API submitted it; the handlers of each API only translate their
contract's shapes and status words to and from these calls. Lookups take the task's *name*:
its id, or the idempotency key the tenant submitted it under (the Orchestrator's
client-chosen `task_id`), so every API finds every task of the tenant. Another tenant's
task is not found either; such a refusal is counted (`store.isolation`, what
`GET /v1/security/isolation` reports), at the cost of one primary-key read on that path only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from runtime.services import Services
from runtime.store import NewTask, Store, TaskEvent, TaskRecord
from runtime.store.coltypes import utc_now
from runtime.store.records import UNFINISHED_STATUSES

__all__ = ["TaskNotFound", "cancel", "find", "submit", "updates"]


class TaskNotFound(LookupError):
    """No task of that name for the tenant (or another tenant's: the same answer)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Task {name} does not exist")
        self.name = name


async def submit(services: Services, new: NewTask) -> TaskRecord:
    """Stores the task as pending and sends it (batched by the intake); counts it for its API.

    The tenant's quotas first: past its `submit_rate_per_second`, RateLimited (nothing
    stored); with `max_queue_depth` unfinished tasks already, the store's QueueFull.
    Raises the store's DuplicateIdempotencyKey and execution's errors as they come."""
    quotas = services.quotas.cached(new.tenant_id)
    if quotas is None:
        quotas = await services.blocking.run(services.quotas.read, new.tenant_id)
    services.limiter.hit_per_second(new.tenant_id, "submit_rate_per_second", quotas.submit_rate_per_second)
    task = await services.runtime.intake.submit(new)
    services.metrics.submitted(new.api)
    return task


def _find(store: Store, tenant_id: str, name: str) -> TaskRecord | None:
    task = store.tasks.find(tenant_id, name)
    if task is None and name.startswith("task_"):
        owner = store.isolation.owner_of(name)
        if owner is not None and owner != tenant_id:
            store.isolation.refused(owner, tenant_id, utc_now())
    return task


async def find(services: Services, tenant_id: str, name: str) -> TaskRecord:
    task = await services.blocking.run(_find, services.store, tenant_id, name)
    if task is None:
        raise TaskNotFound(name)
    return task


async def cancel(services: Services, tenant_id: str, name: str, reason: str | None) -> TaskRecord:
    """Cancels a pending or running task; the store's TaskNotCancellable when it has ended.

    A running task is stopped by the worker that runs it (cooperatively, else interrupted);
    the store already says cancelled, so it can never complete afterwards."""
    task = await find(services, tenant_id, name)
    cancelled = await services.blocking.run(services.store.tasks.cancel, tenant_id, task.task_id, reason)
    if cancelled is None:
        raise TaskNotFound(name)
    await services.blocking.run(services.runtime.bus.cancel, cancelled.task_id)
    return cancelled


async def updates(services: Services, tenant_id: str, name: str) -> AsyncIterator[TaskRecord | TaskEvent]:
    """The task as it is first, then every event in order, until a terminal status.

    Events are rows of the store (written with each transition), so this works from any
    gateway sharing the store; the event bus only wakes the stream early. A closing gateway
    ends its streams within one poll interval (the transport then sends its final event).
    The stream counts against the tenant's stream limit while it is open.
    """
    store, closing = services.store, services.streams.closing
    with services.streams.slot(tenant_id):
        task = await find(services, tenant_id, name)
        with services.runtime.bus.watch(task.task_id) as watch:
            yield task
            seq, status = task.event_seq, task.status
            while status in UNFINISHED_STATUSES and not closing.is_set():
                watch.clear()
                events = await services.blocking.run(store.tasks.events_after, task.task_id, seq)
                for event in events:
                    yield event
                    seq, status = event.seq, event.status
                    if status not in UNFINISHED_STATUSES:
                        break
                if not events:
                    await watch.wait()
