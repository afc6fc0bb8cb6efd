"""What the benchmarks share: how an ASGI app is served, and rate limits that never bind."""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp

from runtime.config import RateLimits

#: Limits far above what two cores can send: the limiter still counts every call.
UNLIMITED = RateLimits(submit=10**9, tasks_read=10**9, cluster=10**9, other=10**9)


def serve_rest(app: ASGIApp, port: int) -> None:
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
