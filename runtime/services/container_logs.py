"""A container task's full log (as far as its node kept it), for any API's logs endpoint.

The task's result holds the last 64 KiB of its output; the log holds the last
`GREY_CONTAINER_LOG_BYTES` (default 4 MiB) of its latest attempt, written when the
container ended (completed, failed, cancelled or timed out).
"""

from __future__ import annotations

from runtime.store import Store, TaskLogRecord

__all__ = ["task_log"]


def task_log(store: Store, tenant_id: str | None, task_id: str) -> TaskLogRecord | None:
    """The log of the tenant's task `task_id`; None when it has none (not a container
    task, not started yet) or is not the tenant's. Blocking: call through
    `services.blocking.run`."""
    return store.logs.get(tenant_id, task_id)
