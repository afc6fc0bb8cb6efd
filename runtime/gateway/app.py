"""One process serving REST and gRPC from the same handlers, on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass
from types import FrameType

import uvicorn
import uvloop
from grpclib.server import Server
from starlette.types import ASGIApp

from handlers.grey import HANDLERS
from runtime.gateway.dispatch import Dispatcher
from runtime.gateway.grpc.server import build_grpc_server
from runtime.gateway.rest.app import build_rest_app
from runtime.services import Services
from runtime.services.auth import SCOPES
from runtime.settings import Settings

ADMIN_TENANT = "default"


@dataclass
class Platform:
    services: Services
    dispatcher: Dispatcher
    rest: ASGIApp

    @classmethod
    def build(cls, services: Services) -> Platform:
        dispatcher = Dispatcher(services, HANDLERS)
        return cls(services, dispatcher, build_rest_app(dispatcher))

    def grpc_server(self) -> Server:
        """Built inside the running loop: grpclib binds a server to the loop it is made in."""
        return build_grpc_server(self.dispatcher)

    def start_runtime(self, worker_threads: int | None = None) -> None:
        """Starts nodes, recovery and in-process workers; `build` alone starts nothing."""
        self.services.start_runtime(worker_threads)

    def ensure_admin_key(self) -> str | None:
        """On an empty store, mints one key with every scope so a new user can try the API."""
        if self.services.store.keys.count() > 0:
            return None
        return self.services.auth.create_key(ADMIN_TENANT, SCOPES, "first admin key")

    async def serve(self) -> None:
        """Until SIGTERM/SIGINT; then stop accepting, end streams, and exit within the grace."""
        settings = self.services.settings
        grace = settings.shutdown_grace_seconds
        config = uvicorn.Config(
            self.rest,
            host=settings.rest_host,
            port=settings.rest_port,
            loop="none",
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=max(1, int(grace) - 2),
        )
        rest = _GatewayServer(config, self.services.streams.closing)
        grpc = self.grpc_server()
        await grpc.start(settings.grpc_host, settings.grpc_port)
        await self.services.blocking.run(self.start_runtime)
        try:
            await rest.serve()
        finally:
            self.services.streams.closing.set()
            grpc.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(grpc.wait_closed(), timeout=2)
            # The in-process pool gets what is left of the one grace, not a grace of its own.
            left = max(0.0, grace - (time.monotonic() - rest.exit_requested_at))
            await self.services.blocking.run(self.services.runtime.stop, left)


class _GatewayServer(uvicorn.Server):
    """uvicorn's server, telling streams to end as soon as a signal asks it to stop."""

    def __init__(self, config: uvicorn.Config, closing: threading.Event) -> None:
        super().__init__(config)
        self._closing = closing
        self.exit_requested_at = time.monotonic()  # replaced by the signal's time

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self._closing.is_set():
            self.exit_requested_at = time.monotonic()
        self._closing.set()
        super().handle_exit(sig, frame)


def serve(settings: Settings) -> None:
    services = Services.open(settings)
    platform = Platform.build(services)
    key = platform.ensure_admin_key()
    if key is not None:
        print(f"Created the first admin key (tenant '{ADMIN_TENANT}', all scopes). Keep it:\n  {key}")
    print(f"REST  http://{settings.rest_host}:{settings.rest_port}  (Swagger UI at /ui/)")
    print(f"gRPC  {settings.grpc_host}:{settings.grpc_port}")
    threads = services.worker_threads()
    where = f"{threads} in-process worker threads (cpu pool)" if threads else "no in-process workers"
    print(f"Broker {services.runtime.kind}, {where}")
    try:
        uvloop.run(platform.serve())
    except KeyboardInterrupt:
        pass
    finally:
        services.close()
