"""Fixtures of a gateway per test (no workers started), on SQLite and PostgreSQL, reached over
REST and gRPC: a pytest plugin that tests/conftest.py registers, so every test folder has them.

- `database_url` (SQLite file, or the session's PostgreSQL database emptied), `services`,
  `platform`: the per-process objects of one gateway.
- `key`: tenant `acme` with every scope; `make_key` mints others.
- `rest` (httpx over ASGI), `grpc_channel` (a grpclib server on a free port), and `call`:
  the same operation call over each transport in turn (tests/support/transports.py).
- `every_api` (all contracts, REST apps built once per session), `api_rest(name)`,
  `api_grpc(name)` (a gRPC server per API), `workers` (the runtime started, in-process
  workers); `wait_for_task` and `parse_sse` for tests that run tasks.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from grpclib.client import Channel
from grpclib.server import Server

from bench.serving import free_port
from runtime.config import ApiRateLimits, RateLimits
from runtime.gateway.app import Gateway, Platform
from runtime.gateway.contracts import CONTRACTS
from runtime.services import Services
from runtime.services.auth import SCOPES
from runtime.settings import Settings
from runtime.store import Store, TaskRecord
from tests.conftest import empty_store
from tests.support.transports import GrpcCaller, RestCaller


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'grey.db'}"
    url = request.getfixturevalue("postgres_url")
    with Store.open(url) as store:
        empty_store(store)
    return url.render_as_string(hide_password=False)


#: The default limits, with CloudAI's reference limits (10 submissions a minute) lifted as
#: Grey's defaults never bind a test; tests/handlers/cloudai/test_rate_limits.py checks them.
TEST_RATE_LIMITS = RateLimits(
    apis={"cloudai": ApiRateLimits(submit=None, tasks_read=None, cluster=None, other=None)}
)


@pytest.fixture
def services(database_url: str) -> Iterator[Services]:
    services = Services.open(
        Settings(database_url=database_url, credential_cache_seconds=0.0), TEST_RATE_LIMITS
    )
    yield services
    services.close()


@pytest.fixture
def platform(services: Services) -> Platform:
    return Platform.build(services)


def make_key(services: Services, tenant: str, scopes: frozenset[str] = SCOPES) -> str:
    return services.auth.create_key(tenant, scopes)


@pytest.fixture
def key(services: Services) -> str:
    """Tenant `acme` with every scope."""
    return make_key(services, "acme")


@pytest.fixture
async def rest(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=platform.rest)
    async with httpx.AsyncClient(transport=transport, base_url="http://grey.test") as client:
        yield client


@pytest.fixture
async def grpc_channel(platform: Platform) -> AsyncIterator[Channel]:
    server = platform.grpc_server()
    port = free_port()
    await server.start("127.0.0.1", port)
    channel = Channel("127.0.0.1", port)
    yield channel
    channel.close()
    server.close()
    await server.wait_closed()


@pytest.fixture(params=["rest", "grpc"])
def call(request: pytest.FixtureRequest, platform: Platform) -> RestCaller | GrpcCaller:
    """The same operation call over either transport."""
    if request.param == "rest":
        return RestCaller(request.getfixturevalue("rest"))
    return GrpcCaller(request.getfixturevalue("grpc_channel"))


# -- every API on one runtime: a client per API, and workers ------------------------------

_SHARED_GATEWAYS: dict[str, Gateway] = {}


@pytest.fixture
def every_api(services: Services) -> Platform:
    """Every contract's gateway on this test's services. The REST apps are built once per
    session (building the three takes ~1 s) and reused: only their dispatchers' services
    change, as in tests/execution/conftest.py. (Their edge still counts calls into the first
    test's `Metrics`; task metrics, which /metrics shows, come from this test's services.)"""
    if not _SHARED_GATEWAYS:
        _SHARED_GATEWAYS.update(Platform.build(services, list(CONTRACTS.values())).gateways)
    for gateway in _SHARED_GATEWAYS.values():
        gateway.dispatcher.services = services
    return Platform(services, dict(_SHARED_GATEWAYS))


@pytest.fixture
async def api_rest(every_api: Platform) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """`api_rest("openmcp")`: an httpx client of that API's REST app (over ASGI)."""
    clients: dict[str, httpx.AsyncClient] = {}

    def client(api: str) -> httpx.AsyncClient:
        if api not in clients:
            transport = httpx.ASGITransport(app=every_api.gateways[api].rest)
            clients[api] = httpx.AsyncClient(transport=transport, base_url=f"http://{api}.test")
        return clients[api]

    yield client
    for made in clients.values():
        await made.aclose()


@pytest.fixture
async def api_grpc_port(every_api: Platform) -> AsyncIterator[Callable[[str], int]]:
    """`api_grpc_port("orchestrator")`: the port of that API's own gRPC server (each API with a
    proto gets a server on a free port, as `grey serve` gives each its listener)."""
    servers: dict[str, tuple[Server, int]] = {}
    for name, gateway in every_api.gateways.items():
        if gateway.contract.grpc_services is None:
            continue
        server = gateway.grpc_server()
        port = free_port()
        await server.start("127.0.0.1", port)
        servers[name] = (server, port)
    yield lambda api: servers[api][1]
    for server, _ in servers.values():
        server.close()
        await server.wait_closed()


@pytest.fixture
async def api_grpc(api_grpc_port: Callable[[str], int]) -> AsyncIterator[Callable[[str], Channel]]:
    """`api_grpc("openmcp")`: a grpclib channel to that API's gRPC server."""
    channels: dict[str, Channel] = {}

    def channel(api: str) -> Channel:
        if api not in channels:
            channels[api] = Channel("127.0.0.1", api_grpc_port(api))
        return channels[api]

    yield channel
    for made in channels.values():
        made.close()


@pytest.fixture
def workers(every_api: Platform) -> Platform:
    """`every_api` with its runtime started: node, recovery and 4 in-process worker threads
    (stopped when `services` closes)."""
    every_api.start_runtime(worker_threads=4)
    return every_api


FINISHED = ("completed", "failed", "cancelled", "timeout")


async def wait_for_task(
    services: Services,
    name: str,
    statuses: tuple[str, ...] = FINISHED,
    tenant_id: str = "acme",
    timeout: float = 15.0,
) -> TaskRecord:
    """Until the tenant's task `name` (Grey's id or the client's task_id) has one of
    `statuses` in the store; its record."""
    deadline = time.monotonic() + timeout
    while True:
        task = services.store.tasks.find(tenant_id, name)
        if task is not None and task.status in statuses:
            return task
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} is {task.status if task else 'missing'}, not one of {statuses}")
        await asyncio.sleep(0.02)


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) of each Server-Sent Event of a finished stream."""
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((fields["event"], json.loads(fields["data"])))
    return events


async def until_streaming(services: Services, tenant_id: str = "acme", timeout: float = 10.0) -> None:
    """Until a stream of the tenant is open (it holds its slot before it reads the task), and a
    moment more for it to read the task's state: what it sends first."""
    deadline = time.monotonic() + timeout
    while services.streams.open_count(tenant_id) < 1:
        if time.monotonic() > deadline:
            raise AssertionError(f"no stream of {tenant_id} opened within {timeout}s")
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
