"""One process serving every enabled API over REST and gRPC from the same handlers, on one
event loop: each API on its own listeners (runtime/gateway/contracts.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

import uvicorn
import uvloop
from grpclib.server import Server
from starlette.types import ASGIApp, Receive, Scope, Send

from runtime.gateway.contracts import ApiContract, base_path, enabled, ports
from runtime.gateway.dashboard.app import build_dashboard
from runtime.gateway.dispatch import Dispatcher
from runtime.gateway.grpc.server import build_grpc_server
from runtime.gateway.rest.app import build_rest_app
from runtime.gateway.tls import TlsError, server_tls
from runtime.gateway.tls import mode as tls_mode
from runtime.services import Services
from runtime.services.auth import SCOPES
from runtime.settings import Settings

ADMIN_TENANT = "default"
DASHBOARD_PATH = "/dashboard"  # on the primary API's REST listener (Grey Distributed's)


@dataclass
class Gateway:
    """One API's side of the process: its dispatcher and REST app (gRPC built on demand)."""

    contract: ApiContract
    dispatcher: Dispatcher
    rest: ASGIApp

    @classmethod
    def build(cls, services: Services, contract: ApiContract) -> Gateway:
        dispatcher = Dispatcher(services, contract)
        return cls(contract, dispatcher, build_rest_app(dispatcher))

    def grpc_server(self) -> Server:
        """Built inside the running loop: grpclib binds a server to the loop it is made in."""
        return build_grpc_server(self.dispatcher)


@dataclass(frozen=True, slots=True)
class Listener:
    api: str
    title: str
    transport: str  # REST | gRPC
    host: str
    port: int
    base_path: str = ""  # REST: the prefix the API answers under on a shared port
    tls: str = ""  # "" (plain), "TLS" or "mTLS": runtime/gateway/tls.py:mode

    def line(self, width: int = 0) -> str:
        """`Grey Distributed  REST  http://127.0.0.1:8080`: what `grey serve` prints (with TLS
        `https://` and the mode after the address)."""
        if self.transport == "REST":
            where = f"{'https' if self.tls else 'http'}://{self.host}:{self.port}{self.base_path}"
        else:
            where = f"{self.host}:{self.port}"
        return f"{self.title:<{width}}  {self.transport:<4}  {where}" + (f"  {self.tls}" if self.tls else "")


@dataclass
class Platform:
    services: Services
    gateways: dict[str, Gateway] = field(default_factory=dict)

    @classmethod
    def build(cls, services: Services, contracts: Sequence[ApiContract] | None = None) -> Platform:
        """A gateway per contract: those given, else those the settings enable (`GREY_APIS`)."""
        chosen = list(contracts) if contracts is not None else enabled(services.settings.apis)
        if not chosen:
            raise ValueError("no API to serve")
        return cls(services, {c.name: Gateway.build(services, c) for c in chosen})

    @property
    def primary(self) -> Gateway:
        """The first API (Grey Distributed unless `GREY_APIS` says otherwise)."""
        return next(iter(self.gateways.values()))

    @property
    def dispatcher(self) -> Dispatcher:
        return self.primary.dispatcher

    @property
    def rest(self) -> ASGIApp:
        return self.primary.rest

    def grpc_server(self, api: str | None = None) -> Server:
        """The gRPC server of one API (the primary one by default), built in the running loop."""
        return (self.gateways[api] if api else self.primary).grpc_server()

    def listeners(self) -> list[Listener]:
        """Every API's listeners. APIs may share a port: gRPC ones always (method paths carry
        the proto package), REST ones when each has its own base path (`GREY_<API>_BASE_PATH`;
        at most one of them at the root)."""
        settings = self.services.settings
        found = []
        for name, gateway in self.gateways.items():
            rest_port, grpc_port = ports(gateway.contract, settings)
            title = gateway.contract.title
            found.append(
                Listener(
                    name,
                    title,
                    "REST",
                    settings.rest_host,
                    rest_port,
                    base_path(gateway.contract, settings),
                    tls_mode(settings, "REST"),
                )
            )
            if grpc_port is not None:
                found.append(
                    Listener(
                        name, title, "gRPC", settings.grpc_host, grpc_port, tls=tls_mode(settings, "gRPC")
                    )
                )
        taken: dict[int, Listener] = {}
        for listener in found:
            other = taken.setdefault(listener.port, listener)
            if other is listener or _may_share(other, listener, found):
                continue
            raise ValueError(
                f"port {listener.port} is given to {other.api} {other.transport} and to "
                f"{listener.api} {listener.transport}: set GREY_{listener.api.upper()}_"
                f"{listener.transport.upper()}_PORT, or give each REST API on the port its own "
                f"GREY_<API>_BASE_PATH"
            )
        return found

    def rest_apps(self) -> dict[int, dict[str, ASGIApp]]:
        """What each REST port serves, by base path: every API's REST app, and the dashboard
        at /dashboard on the primary API's listener."""
        by_port: dict[int, dict[str, ASGIApp]] = {}
        for listener in self.listeners():
            if listener.transport == "REST":
                by_port.setdefault(listener.port, {})[listener.base_path] = self.gateways[listener.api].rest
        dashboard = self.dashboard_listener()
        if dashboard is not None:
            by_port[dashboard.port][DASHBOARD_PATH] = build_dashboard(
                self.services, secure=bool(dashboard.tls)
            )
        return by_port

    def dashboard_listener(self) -> Listener | None:
        """The REST listener the dashboard shares (the primary API's, at /dashboard/); None
        when another API's base path is /dashboard already."""
        for listener in self.listeners():
            if listener.api == self.primary.contract.name and listener.transport == "REST":
                taken = [
                    other.base_path
                    for other in self.listeners()
                    if other.port == listener.port and other.transport == "REST"
                ]
                return None if DASHBOARD_PATH in taken else listener
        return None

    def start_runtime(self, worker_threads: int | None = None) -> None:
        """Starts nodes, recovery and in-process workers; `build` alone starts nothing."""
        self.services.start_runtime(worker_threads)

    def ensure_admin_key(self) -> str | None:
        """On an empty store, mints one key with every scope so a new user can try the API."""
        if self.services.store.keys.count() > 0:
            return None
        return self.services.auth.create_key(ADMIN_TENANT, SCOPES, "first admin key")

    async def serve(self) -> None:
        """Until SIGTERM/SIGINT; then stop accepting, end streams, and exit within the grace.

        One uvicorn server holds every REST listener and routes by the port a call came in
        on; each API with a proto has its own grpclib server.
        """
        settings = self.services.settings
        grace = settings.shutdown_grace_seconds
        listeners = self.listeners()
        tls = server_tls(settings)  # None: plain HTTP and h2c
        by_port = self.rest_apps()
        sockets = [
            _bind(next(li.host for li in listeners if li.port == port and li.transport == "REST"), port)
            for port in by_port
        ]
        config = uvicorn.Config(
            _ByPort(by_port),
            loop="none",
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=max(1, int(grace) - 2),
            # uvicorn wraps the pre-bound sockets in this context (create_server(sock=, ssl=)).
            ssl_context_factory=None if tls is None else (lambda _config, _default: tls.rest),
        )
        rest = _GatewayServer(config, self.services.streams.closing)
        grpc_ports: dict[tuple[str, int], list[Dispatcher]] = {}
        for listener in listeners:
            if listener.transport == "gRPC":
                grpc_ports.setdefault((listener.host, listener.port), []).append(
                    self.gateways[listener.api].dispatcher
                )
        grpc_servers = []
        for (host, port), dispatchers in grpc_ports.items():
            server = build_grpc_server(dispatchers)  # made here: grpclib binds it to this loop
            await server.start(host, port, ssl=None if tls is None else tls.grpc)
            grpc_servers.append(server)
        await self.services.blocking.run(self.start_runtime)
        try:
            await rest.serve(sockets=sockets)
        finally:
            self.services.streams.closing.set()
            for server in grpc_servers:
                server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(s.wait_closed() for s in grpc_servers)), timeout=2)
            # The in-process pool gets what is left of the one grace, not a grace of its own.
            left = max(0.0, grace - (time.monotonic() - rest.exit_requested_at))
            await self.services.blocking.run(self.services.runtime.stop, left)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    sock.setblocking(False)
    return sock


def _may_share(first: Listener, second: Listener, listeners: Sequence[Listener]) -> bool:
    """Whether two listeners may use one port: both gRPC, or REST ones on distinct base paths."""
    if first.transport != second.transport:
        return False
    if first.transport == "gRPC":
        return True
    paths = [
        listener.base_path
        for listener in listeners
        if listener.port == first.port and listener.transport == "REST"
    ]
    return len(set(paths)) == len(paths)


class _ByPort:
    """Every REST listener on one uvicorn server: a call goes to the API of its local port
    and, where APIs share the port, of the longest base path its path starts with."""

    def __init__(self, apps: dict[int, dict[str, ASGIApp]]) -> None:
        self.apps = {
            port: sorted(mounted.items(), key=lambda item: len(item[0]), reverse=True)
            for port, mounted in apps.items()
        }
        only = next(iter(self.apps.values())) if len(self.apps) == 1 else None
        self.only = only[0][1] if only is not None and len(only) == 1 and not only[0][0] else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.only is not None:
            await self.only(scope, receive, send)
            return
        server = scope.get("server")
        mounted = self.apps.get(server[1]) if server else None
        mounted = mounted or next(iter(self.apps.values()))
        path: str = scope.get("path", "")
        for prefix, app in mounted:
            if not prefix:
                await app(scope, receive, send)
                return
            if path == prefix or path.startswith(prefix + "/"):
                inner = {
                    **scope,
                    "path": path[len(prefix) :] or "/",
                    "raw_path": scope.get("raw_path", b"")[len(prefix) :] or b"/",
                }
                await app(inner, receive, send)
                return
        await _no_api(scope, receive, send, [prefix for prefix, _ in mounted])


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


async def _no_api(scope: Scope, receive: Receive, send: Send, prefixes: list[str]) -> None:
    """A path under none of the port's base paths: 404 naming them (no API's envelope fits)."""
    body = json.dumps(
        {"error": {"code": "not_found", "message": f"No API here; this port serves {', '.join(prefixes)}"}}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if scope["type"] == "websocket":  # an upgrade: the same 404 (before accept), else a 403
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.http.response.start", "status": 404, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve(settings: Settings) -> None:
    try:
        server_tls(settings)  # a bad certificate or key stops here, before anything opens
    except TlsError as error:
        raise SystemExit(f"grey serve: {error}") from None
    services = Services.open(settings)
    platform = Platform.build(services)
    key = platform.ensure_admin_key()
    if key is not None:
        print(f"Created the first admin key (tenant '{ADMIN_TENANT}', all scopes). Keep it:\n  {key}")
    listeners = platform.listeners()
    width = max(len(listener.title) for listener in listeners)
    for listener in listeners:
        suffix = "  (Swagger UI at /ui/)" if listener.transport == "REST" else "  (server reflection)"
        print(listener.line(width) + suffix)
    threads, tee = services.worker_threads(), services.tee_threads()
    where = f"{threads} in-process worker threads (cpu pool)" if threads else "no in-process workers"
    if tee:
        where += f" + {tee} (tee pool, sgx-sim simulation)"
    print(f"Broker {services.runtime.kind}, {where}")
    dashboard = platform.dashboard_listener()
    if dashboard is not None:
        scheme = "https" if dashboard.tls else "http"
        print(f"Dashboard  {scheme}://{dashboard.host}:{dashboard.port}{DASHBOARD_PATH}/")
    try:
        uvloop.run(platform.serve())
    except KeyboardInterrupt:
        pass
    finally:
        services.close()
