"""/dashboard/live: one WebSocket per open page, one subscription to the cluster-event feed.

The socket is authenticated by the session cookie (never a key in its URL) and, as browsers
send cookies on cross-site WebSocket upgrades, refuses an `Origin` other than its own host.
It subscribes once to runtime.services.telemetry's hub (the feed CloudAI's /ws/telemetry
reads: the tenant's task events of every type — submitted, started, ended — and every
worker event) and forwards each event as it comes; completions carry their submit and end
times (one key read per completion) for the latency chart. The page may also ask to
`watch` the one task it shows: that task's own event stream
(runtime.services.tasks.updates), which also carries its progress and messages. The
session is checked again every RECHECK_SECONDS: a revoked key closes the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect

from runtime.gateway.dashboard import data
from runtime.gateway.dashboard.session import COOKIE, NotSignedIn, Sessions
from runtime.services import Services
from runtime.services import tasks as task_service
from runtime.services.auth import Principal
from runtime.services.telemetry import Resync, Subscriber
from runtime.store import ClusterEventRecord, TaskEvent, TaskRecord
from runtime.store.cluster_events import ENDINGS

CLOSE_POLICY = 1008
CLOSE_GOING_AWAY = 1001
RECHECK_SECONDS = 15.0


def _same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:  # not a browser: the cookie alone decides
        return True
    return urlsplit(origin).netloc.lower() == websocket.headers.get("host", "").lower()


def event_message(event: ClusterEventRecord) -> dict[str, Any]:
    """A feed event in the dashboard's words (statuses as Grey's API spells them)."""
    if event.task_id is not None:  # task_submitted, task_started, task_completed (every task type)
        return {
            "type": "task",
            "task_id": event.task_id,
            "status": event.status,
            "worker_id": event.node_id,
            "at": event.at,
            "seq": event.seq,
        }
    return {
        "type": "worker",
        "worker_id": event.node_id,
        "state": event.status,
        "alive": event.status != "down",
        "at": event.at,
        "seq": event.seq,
    }


class LiveConnection:
    """One page's socket: the one writer, the subscription, and at most one watched task."""

    def __init__(self, websocket: WebSocket, services: Services, sessions: Sessions, principal: Principal):
        self.websocket = websocket
        self.services = services
        self.sessions = sessions
        self.principal = principal
        self.cookie = websocket.cookies.get(COOKIE)
        self.send_lock = asyncio.Lock()
        self.watching: asyncio.Task[None] | None = None

    async def send(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.websocket.send_text(json.dumps(message))

    async def forward(self, subscriber: Subscriber) -> str:
        """Until the server closes or the session ends; returns why it stopped."""
        loop = asyncio.get_running_loop()
        closing = self.services.streams.closing
        recheck = loop.time() + RECHECK_SECONDS
        sees_tasks = "tasks:read" in self.principal.scopes
        sees_workers = "cluster:read" in self.principal.scopes
        while not closing.is_set():
            if loop.time() >= recheck:
                try:
                    await self.services.blocking.run(self.sessions.principal, self.cookie)
                except NotSignedIn:
                    return "signed_out"
                recheck = loop.time() + RECHECK_SECONDS
            try:
                first = await asyncio.wait_for(subscriber.queue.get(), 1.0)
            except TimeoutError:
                continue
            items = [first]
            while not subscriber.queue.empty():
                items.append(subscriber.queue.get_nowait())
            messages: list[dict[str, Any]] = []
            for item in items:
                if isinstance(item, Resync):
                    messages.append({"type": "resync", "since": item.since})
                    continue
                message = event_message(item)
                if (message["type"] == "task" and sees_tasks) or (
                    message["type"] == "worker" and sees_workers
                ):
                    messages.append(message)
            ended = [m["task_id"] for m in messages if m["type"] == "task" and m["status"] in ENDINGS]
            if ended:
                times = await self.services.blocking.run(
                    data.completions, self.services, self.principal.tenant_id, ended
                )
                for message in messages:
                    if message["type"] == "task" and message["status"] in ENDINGS:
                        message.update(times.get(message["task_id"], {}))
            for message in messages:
                await self.send(message)
        return "closing"

    async def watch(self, task_id: str) -> None:
        """The task's own stream (any API's task): its state, then each event until it ends."""
        try:
            async for update in task_service.updates(self.services, self.principal.tenant_id, task_id):
                if isinstance(update, TaskRecord):
                    message = {"status": update.status, "progress": update.progress, "seq": update.event_seq}
                else:
                    assert isinstance(update, TaskEvent)
                    message = {
                        "status": update.status,
                        "progress": update.progress,
                        "message": update.message,
                        "seq": update.seq,
                        "at": update.at.timestamp(),
                    }
                await self.send({"type": "task", "source": "watch", "task_id": task_id, **message})
        except task_service.TaskNotFound:
            await self.send({"type": "watch_error", "task_id": task_id, "message": "no such task"})
        except Exception as error:  # the stream limit, a store outage: the page falls back to reads
            await self.send({"type": "watch_error", "task_id": task_id, "message": str(error)})

    async def read(self) -> None:
        """The page's requests: `{"watch": task_id}` (or null to stop watching)."""
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                raw = await self.websocket.receive_text()
                try:
                    request = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(request, dict) or "watch" not in request:
                    continue
                self.stop_watching()
                task_id = request["watch"]
                if isinstance(task_id, str) and task_id and "tasks:read" in self.principal.scopes:
                    self.watching = asyncio.get_running_loop().create_task(self.watch(task_id[:256]))

    def stop_watching(self) -> None:
        if self.watching is not None:
            self.watching.cancel()
            self.watching = None


async def live_socket(websocket: WebSocket, services: Services, sessions: Sessions) -> None:
    """GET /dashboard/live (upgrade): closed with 1008 before accepting without a session."""
    try:
        if not _same_origin(websocket):
            raise NotSignedIn("cross-origin")
        principal = await services.blocking.run(sessions.principal, websocket.cookies.get(COOKIE))
    except NotSignedIn:
        await websocket.close(CLOSE_POLICY)
        return
    await websocket.accept()
    connection = LiveConnection(websocket, services, sessions, principal)
    hub = services.telemetry
    subscriber = await hub.subscribe(principal.tenant_id)
    await connection.send({"type": "hello", "tenant_id": principal.tenant_id, "seq": subscriber.last_seq})
    ended: list[str] = []
    try:
        # Whichever ends first ends the others: the page leaving, the server closing, the
        # session ending, or the page falling too far behind.
        async with anyio.create_task_group() as group:

            async def until(job: Callable[[], Awaitable[str]]) -> None:
                ended.append(await job())
                group.cancel_scope.cancel()

            async def overflowed() -> str:
                await subscriber.overflowed.wait()
                return "overflowed"

            async def left() -> str:
                await connection.read()
                return "left"

            group.start_soon(until, lambda: connection.forward(subscriber))
            group.start_soon(until, left)
            group.start_soon(until, overflowed)
    finally:
        hub.unsubscribe(subscriber)
        connection.stop_watching()
    reasons = {
        "signed_out": (CLOSE_POLICY, "signed out"),
        "closing": (CLOSE_GOING_AWAY, "server shutting down"),
        "overflowed": (CLOSE_POLICY, "too slow"),
    }
    if ended and ended[0] in reasons:
        with contextlib.suppress(Exception):
            await websocket.close(*reasons[ended[0]])
