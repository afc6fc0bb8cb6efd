"""A store that refuses connections: 503 with Retry-After on both transports, never a 500,
health says so while it lasts, and the same calls work again once it is back."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import httpx
import pytest
from grpclib.client import Channel
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from bench.serving import free_port
from runtime.gateway.app import Platform
from runtime.services import Services
from runtime.settings import Settings
from tests.support.platform import make_key
from tests.support.transports import GrpcCaller

SUBMIT = {"type": "stateless", "payload": {"function": "echo"}}
Switch = Callable[[bool], None]


@pytest.fixture
def own_database(postgres_url: URL) -> Iterator[tuple[URL, Switch, Switch]]:
    """A database of this test's own, and a switch that makes PostgreSQL refuse it."""
    admin = create_engine(postgres_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"grey_outage_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def read_only(on: bool) -> None:
        with admin.connect() as conn:
            conn.execute(
                text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {"on" if on else "off"}')
            )
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )

    def refuse(refusing: bool) -> None:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if refusing else "true"}'))
            if refusing:
                conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                    {"n": name},
                )

    yield postgres_url.set(database=name), refuse, read_only
    refuse(False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


async def test_refused_connections_answer_503_then_work_again(own_database) -> None:
    url, refuse, _ = own_database
    services = Services.open(
        Settings(database_url=url.render_as_string(hide_password=False), credential_cache_seconds=0.0)
    )
    platform = Platform.build(services)
    server = platform.grpc_server()
    port = free_port()
    await server.start("127.0.0.1", port)

    channel = Channel("127.0.0.1", port)
    try:
        key = make_key(services, "acme")
        headers = {"X-API-Key": key}
        transport = httpx.ASGITransport(app=platform.rest)
        async with httpx.AsyncClient(transport=transport, base_url="http://grey.test") as rest:
            accepted = await rest.post("/v1/tasks", json=SUBMIT, headers=headers)
            assert accepted.status_code == 201

            refuse(True)
            for answer in (
                await rest.post("/v1/tasks", json=SUBMIT, headers=headers),
                await rest.get(f"/v1/tasks/{accepted.json()['task_id']}", headers=headers),
                await rest.get("/v1/tasks", headers=headers),
            ):
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"]["code"] == "service_unavailable"
                assert int(answer.headers["retry-after"]) >= 1
            grpc_answer = await GrpcCaller(channel)("submitTask", key, **SUBMIT)
            assert grpc_answer.code == "service_unavailable" and grpc_answer.status == 14  # UNAVAILABLE
            assert (await rest.get("/health")).json()["healthy"] is False
            cluster = await rest.get("/v1/cluster/health", headers=headers)
            assert cluster.status_code == 503 or cluster.json()["healthy"] is False

            refuse(False)
            again = await rest.post("/v1/tasks", json=SUBMIT, headers=headers)
            assert again.status_code == 201, again.text
            assert (await rest.get("/health")).json()["healthy"] is True
    finally:
        channel.close()
        server.close()
        await server.wait_closed()
        services.close()


async def test_a_read_only_store_answers_503_and_stores_nothing(own_database) -> None:
    url, _, read_only = own_database
    services = Services.open(
        Settings(database_url=url.render_as_string(hide_password=False), credential_cache_seconds=60.0)
    )
    try:
        key = make_key(services, "acme")
        headers = {"X-API-Key": key}
        transport = httpx.ASGITransport(app=Platform.build(services).rest)
        async with httpx.AsyncClient(transport=transport, base_url="http://grey.test") as rest:
            assert (await rest.get("/v1/tasks", headers=headers)).status_code == 200  # key cached
            read_only(True)
            refused = await rest.post("/v1/tasks", json=SUBMIT, headers=headers)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "service_unavailable"
            assert (await rest.get("/v1/tasks", headers=headers)).json()["tasks"] == []
            read_only(False)
            assert (await rest.post("/v1/tasks", json=SUBMIT, headers=headers)).status_code == 201
    finally:
        services.close()
