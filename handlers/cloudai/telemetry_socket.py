"""`/ws/telemetry`: CloudAI's live feed, in the reference's message format.

Every message is `{"type", "timestamp", "seq", "data"}`. `telemetry_update` comes every
`GREY_CLOUDAI_TELEMETRY_INTERVAL_SECONDS` (5 s) with the workers, the tenant's running
tasks and the cluster totals; `task_started`, `task_completed` (`data.status`: completed,
failed or cancelled; `data.outcome`: Grey's status, which also tells a timeout),
`worker_registered` and `worker_disconnected` as they happen; `resync` when a reconnecting
client's `?since=<seq>` is older than what is retained. `seq` is the cluster-event sequence
number: an event's own, an update's the newest the connection has been given.

A connection that lets `GREY_TELEMETRY_QUEUE_MESSAGES` messages pile up unread is closed
with 1008 (policy violation), so a slow client cannot grow the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect

from handlers.cloudai.views import STATUS, USER_LABEL
from runtime.api.context import RequestContext
from runtime.api.errors import ApiError
from runtime.api.websocket import CLOSE_GOING_AWAY, CLOSE_POLICY, WebSocketSpec
from runtime.services import Services
from runtime.services.telemetry import Item, Resync, Subscriber, TelemetryHub
from runtime.services.workers import WorkerView, list_workers, totals_of
from runtime.store import ClusterEventRecord, TaskRecord
from runtime.store.records import CONTAINER_TASK

SCOPES = frozenset({"cluster:read"})
#: The feed's kinds CloudAI's reference sends (not `task_submitted`, which the feed also records).
KINDS = frozenset({"task_started", "task_completed", "worker_registered", "worker_disconnected"})
SNAPSHOT_SECONDS = 1.0  # connections share a snapshot of workers and tasks this long


def _timestamp(at: datetime | float) -> str:
    moment = datetime.fromtimestamp(at, UTC) if isinstance(at, float) else at.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _percent(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 1) if whole > 0 else 0.0


def cloudai_wants(event: ClusterEventRecord) -> bool:
    """CloudAI's part of the feed: its kinds, and of task events only container tasks'."""
    return event.kind in KINDS and (event.task_id is None or event.task_type == CONTAINER_TASK)


def event_message(event: ClusterEventRecord) -> dict[str, Any]:
    """A cluster event in the reference's words."""
    data: dict[str, Any]
    if event.kind in ("task_started", "task_completed"):
        status = event.status or ""
        data = {"task_id": event.task_id, "status": STATUS.get(status, status), "worker_id": event.node_id}
        if event.kind == "task_completed":
            data["outcome"] = status  # completed | failed | cancelled | timeout
    else:
        data = {"worker_id": event.node_id, "is_active": event.status != "down"}
    return {"type": event.kind, "timestamp": _timestamp(event.at), "seq": event.seq, "data": data}


def resync_message(resync: Resync, seq: int) -> dict[str, Any]:
    return {
        "type": "resync",
        "timestamp": _timestamp(datetime.now(UTC)),
        "seq": seq,
        "data": {
            "since": resync.since,
            "oldest_retained": resync.oldest,
            "message": "Events after `since` are no longer retained; the next telemetry_update is the state",
        },
    }


def _worker_entry(worker: WorkerView) -> dict[str, Any]:
    heartbeat = worker.last_heartbeat or worker.registered_at
    return {
        "worker_id": worker.node_id,
        "cpu_usage": _percent(worker.allocated.cpu, worker.total.cpu),
        "memory_usage": _percent(worker.allocated.memory_gb, worker.total.memory_gb),
        "active_tasks": len(worker.running_tasks),
        "last_heartbeat": int(heartbeat.timestamp()),
    }


def _task_entry(task: TaskRecord) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "user_id": task.labels.get(USER_LABEL),
        "status": STATUS[task.status],
        "worker_id": task.executed_on,
        "progress": float(task.progress),
    }


def _snapshot(services: Services) -> tuple[list[WorkerView], list[TaskRecord]]:
    store = services.store
    running = [
        task for task in store.scheduling.unfinished(statuses=("running",)) if task.type == CONTAINER_TASK
    ]
    return list_workers(store), running


async def update_message(services: Services, tenant_id: str, seq: int) -> dict[str, Any]:
    """`telemetry_update`: workers (usage: percent of each worker's totals allocated), the
    tenant's running tasks, and the cluster totals."""
    hub = services.telemetry

    async def build() -> tuple[list[WorkerView], list[TaskRecord]]:
        return await services.blocking.run(_snapshot, services)

    workers, running = await hub.cached("snapshot", build, SNAPSHOT_SECONDS)
    totals = totals_of(workers, {})
    return {
        "type": "telemetry_update",
        "timestamp": _timestamp(datetime.now(UTC)),
        "seq": seq,
        "data": {
            "workers": [_worker_entry(worker) for worker in workers],
            "tasks": [_task_entry(task) for task in running if task.tenant_id == tenant_id],
            "cluster": {
                "total_workers": totals.total_workers,
                "active_workers": totals.active_workers,
                "available_cpu": totals.available.cpu,
                "available_memory": totals.available.memory_gb,
            },
        },
    }


def _since(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ApiError("bad_request", "since must be a sequence number (an integer >= 0)", {"field": "since"})
    return value


async def _send_loop(ws: WebSocket, subscriber: Subscriber, services: Services, tenant_id: str) -> None:
    """The one writer: queued events as they come, an update every interval."""
    interval = services.telemetry.settings.interval_seconds
    closing = services.streams.closing
    loop = asyncio.get_running_loop()
    due = loop.time()  # the first update at once: the state a client starts from
    seq = subscriber.last_seq
    while not closing.is_set():
        wait = due - loop.time()
        item: Item | None = None
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                item = await asyncio.wait_for(subscriber.queue.get(), min(wait, 1.0))
        if item is None:
            if loop.time() >= due:
                await ws.send_text(json.dumps(await update_message(services, tenant_id, seq)))
                due = loop.time() + interval
            continue
        if isinstance(item, Resync):
            message = resync_message(item, seq)
        else:
            seq = max(seq, item.seq)
            message = event_message(item)
        await ws.send_text(json.dumps(message))
    await ws.close(CLOSE_GOING_AWAY, "server shutting down")


async def _read_loop(ws: WebSocket) -> None:
    """Until the client goes; what it sends is not needed (it may ping)."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return


async def telemetry(ws: WebSocket, ctx: RequestContext) -> None:
    """GET /ws/telemetry: the tenant's live feed (`?since=<seq>` to replay what was missed)."""
    since = _since(ws.query_params.get("since"))
    services = ctx.services
    hub: TelemetryHub = services.telemetry
    await ws.accept()
    subscriber = await hub.subscribe(ctx.tenant_id, since, cloudai_wants)
    ended: list[str] = []
    try:
        # Whichever ends first ends the others: the client leaving, the server closing, or
        # the client falling too far behind.
        async with anyio.create_task_group() as group:

            async def until(name: str, job: Callable[[], Awaitable[Any]]) -> None:
                await job()
                ended.append(name)
                group.cancel_scope.cancel()

            group.start_soon(until, "sent", lambda: _send_loop(ws, subscriber, services, ctx.tenant_id))
            group.start_soon(until, "left", lambda: _read_loop(ws))
            group.start_soon(until, "overflowed", subscriber.overflowed.wait)
    finally:
        hub.unsubscribe(subscriber)
    if ended and ended[0] == "overflowed":
        size = hub.settings.queue_size
        with contextlib.suppress(Exception):
            await ws.close(CLOSE_POLICY, f"too slow: {size} messages unread")


TELEMETRY = WebSocketSpec(telemetry, SCOPES, "CloudAI live telemetry")
