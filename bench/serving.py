"""What the benchmarks share: free ports, how an ASGI app is served, and rate limits that never
bind. The tests take `free_port` from here too, so there is one copy of it."""

from __future__ import annotations

import socket
import time

import uvicorn
from starlette.types import ASGIApp

from runtime.config import RateLimits

HOST = "127.0.0.1"

#: Limits far above what two cores can send: the limiter still counts every call.
UNLIMITED = RateLimits(submit=10**9, tasks_read=10**9, cluster=10**9, other=10**9)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0


def wait_listening(port: int, timeout: float = 10.0) -> None:
    """Until 127.0.0.1:`port` accepts connections; SystemExit after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not listening(port):
        if time.monotonic() > deadline:
            raise SystemExit(f"nothing listens on {HOST}:{port} after {timeout:.0f} s")
        time.sleep(0.05)


def serve_rest(app: ASGIApp, port: int) -> None:
    uvicorn.run(
        app,
        host=HOST,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
