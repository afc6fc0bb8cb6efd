"""Fixtures of a gateway per test (no workers started), on SQLite and PostgreSQL, reached over
REST and gRPC: a pytest plugin that tests/conftest.py registers, so every test folder has them.

- `database_url` (SQLite file, or the session's PostgreSQL database emptied), `services`,
  `platform`: the per-process objects of one gateway.
- `key`: tenant `acme` with every scope; `make_key` mints others.
- `rest` (httpx over ASGI), `grpc_channel` (a grpclib server on a free port), and `call`:
  the same operation call over each transport in turn (tests/support/transports.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from grpclib.client import Channel

from bench.serving import free_port
from runtime.gateway.app import Platform
from runtime.services import Services
from runtime.services.auth import SCOPES
from runtime.settings import Settings
from runtime.store import Store
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


@pytest.fixture
def services(database_url: str) -> Iterator[Services]:
    services = Services.open(Settings(database_url=database_url, credential_cache_seconds=0.0))
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
