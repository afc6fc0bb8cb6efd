"""The dashboard mounted at /dashboard (as `grey serve` mounts it) over the test's services,
and a signed-in client per tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

from runtime.gateway.dashboard.app import build_dashboard
from runtime.services import Services

BASE = "http://grey.test"
CSRF = {"X-Grey-Dashboard": "1"}

SignIn = Callable[[str], Awaitable[httpx.AsyncClient]]


def mounted(services: Services, output_root: Path, secure: bool = False) -> ASGIApp:
    dashboard = build_dashboard(services, secure=secure, output_root=output_root)
    return Starlette(routes=[Mount("/dashboard", app=dashboard)])


@pytest.fixture
def capacity_root(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def dashboard(services: Services, capacity_root: Path) -> ASGIApp:
    return mounted(services, capacity_root)


@pytest.fixture
async def client(dashboard: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=dashboard)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as made:
        yield made


@pytest.fixture
async def sign_in(dashboard: ASGIApp) -> AsyncIterator[SignIn]:
    """`await sign_in(key)`: a client of its own holding that key's session cookie."""
    clients: list[httpx.AsyncClient] = []

    async def signed_in(key: str) -> httpx.AsyncClient:
        made = httpx.AsyncClient(transport=httpx.ASGITransport(app=dashboard), base_url=BASE)
        clients.append(made)
        answer = await made.post("/dashboard/session", json={"api_key": key})
        assert answer.status_code == 200, answer.text
        return made

    yield signed_in
    for made in clients:
        await made.aclose()
