"""What the benchmarks share: free ports, how an ASGI app is served, and rate limits and
quotas that never bind. The tests take `free_port` from here too, so there is one copy of it."""

from __future__ import annotations

import socket
import time

import uvicorn
from starlette.types import ASGIApp

from runtime.config import RateLimits
from runtime.services import Services
from runtime.services.auth import SCOPES

HOST = "127.0.0.1"

#: Limits far above what two cores can send: the limiter still counts every call.
UNLIMITED = RateLimits(submit=10**9, tasks_read=10**9, cluster=10**9, other=10**9)


#: Tenant quotas far above what two cores can run: every submit and claim still checks them.
UNLIMITED_QUOTAS = {
    "cpu_cores": 10**6,
    "memory_gb": 10**6,
    "max_concurrent_tasks": 10**6,
    "max_queue_depth": 10**9,
    "submit_rate_per_second": 10**9,
}


def bench_key(services: Services, tenant: str = "bench") -> str:
    """An all-scopes key of `tenant`, whose quotas are set never to bind."""
    services.store.quotas.update(tenant, UNLIMITED_QUOTAS, "benchmark")
    return services.auth.create_key(tenant, SCOPES)


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, never the same one twice.

    The kernel may give a just-closed port to the next bind, so two calls in a row could
    return one port for two listeners (seen in CI: Grey REST and OpenMCP gRPC on one port);
    remembering what this process handed out rules that out.
    """
    while True:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


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
