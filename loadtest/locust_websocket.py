"""A Locust user of CloudAI's /ws/telemetry: it connects, then reports every message it
receives as a request named by its type, with the delivery latency (the message's
`timestamp` → its arrival) as the response time.

    GREY_API_KEY=... locust -f loadtest/locust_websocket.py --host http://127.0.0.1:8083 \
        --headless -u 500 -r 100 -t 30s

The same run with the server's memory and file descriptors recorded before, during and after:
`python -m loadtest.websocket --locust --clients 500 --seconds 30` (`make loadtest-ws`).
Every user shares the key, so the server needs `GREY_WS_CONNECTIONS_PER_CLIENT` >= users.
The client is websockets' sync one: Locust monkey-patches sockets and threads for gevent, so
each connection's reader thread is a greenlet and a blocked `recv` yields to the other users.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime

from locust import User, constant, events, task
from websockets.sync.client import ClientConnection, connect

API_KEY = os.environ.get("GREY_API_KEY", "")


def _age_ms(timestamp: str) -> float:
    """How long ago, in ms, the server stamped a message (same host clock)."""
    sent = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    return max(0.0, 1000 * (time.time() - sent))


class TelemetryListener(User):
    wait_time = constant(0)
    ws: ClientConnection | None = None

    def on_start(self) -> None:
        base = (self.host or "http://127.0.0.1:8083").replace("http", "ws", 1)
        began = time.perf_counter()
        try:
            # Entered as its context manager would be (websockets asks for it); left in on_stop.
            self.ws = connect(f"{base}/ws/telemetry", additional_headers={"X-API-Key": API_KEY}).__enter__()
            error: Exception | None = None
        except Exception as refused:
            error = refused
        events.request.fire(
            request_type="WS",
            name="connect",
            response_time=1000 * (time.perf_counter() - began),
            response_length=0,
            exception=error,
            context={},
        )

    @task
    def listen(self) -> None:
        if self.ws is None:
            self.stop()
            return
        raw = self.ws.recv(timeout=30)
        message = json.loads(raw)
        events.request.fire(
            request_type="WS",
            name=message["type"],
            response_time=_age_ms(message["timestamp"]),
            response_length=len(raw),
            exception=None,
            context={},
        )

    def on_stop(self) -> None:
        if self.ws is not None:
            self.ws.close()
