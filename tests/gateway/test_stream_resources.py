"""Streams cost nothing once their client is gone, and a tenant cannot open unboundedly many."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import uvicorn

from bench.serving import free_port
from runtime.config import ClusterConfig
from runtime.gateway.app import Platform
from runtime.services import Services
from runtime.settings import Settings
from tests.support.platform import make_key

LIMIT = 2


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Services]]:
    """A real HTTP server (a client can really go away) with no workers: tasks stay pending."""
    limits = ClusterConfig.default().rate_limits.model_copy(update={"streams_per_tenant": LIMIT})
    services = Services.open(Settings(database_url=f"sqlite:///{tmp_path / 'grey.db'}"), limits)
    port = free_port()
    config = uvicorn.Config(
        Platform.build(services).rest, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", services
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 5)
        services.close()


async def _pending_task(client: httpx.AsyncClient, key: str) -> str:
    answer = await client.post(
        "/v1/tasks", json={"type": "stateless", "payload": {"function": "echo"}}, headers={"X-API-Key": key}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["task_id"])


async def _first_event(response: httpx.Response) -> AsyncIterator[str]:
    """Reads up to the first event and returns the line iterator, still open: leaving an
    `async for` would close the response, and with it the stream."""
    lines = response.aiter_lines()
    while not (await anext(lines)).startswith("data:"):
        pass
    return lines


async def _wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    end = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < end:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return bool(condition())


async def test_a_stream_whose_client_goes_away_ends_at_once(served: tuple[str, Services]) -> None:
    url, services = served
    key = make_key(services, "acme")
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        task_id = await _pending_task(client, key)
        async with client.stream("GET", f"/v1/tasks/{task_id}/stream", headers={"X-API-Key": key}) as stream:
            reader = await _first_event(stream)
            assert services.streams.open_count("acme") == 1
            del reader
    # The client closed its connection; the task is still pending, so only that can end it.
    assert await _wait_for(lambda: services.streams.open_count("acme") == 0, 2.0)


async def test_a_tenant_past_its_open_streams_gets_429_and_others_do_not(
    served: tuple[str, Services],
) -> None:
    url, services = served
    key, other = make_key(services, "acme"), make_key(services, "globex")
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        task_id = await _pending_task(client, key)
        path = f"/v1/tasks/{task_id}/stream"
        async with contextlib.AsyncExitStack() as held:
            readers = []
            for _ in range(LIMIT):
                opened = client.stream("GET", path, headers={"X-API-Key": key})
                readers.append(await _first_event(await held.enter_async_context(opened)))
            assert services.streams.open_count("acme") == LIMIT
            refused = await client.get(path, headers={"X-API-Key": key})
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "rate_limited"
            other_task = await _pending_task(client, other)
            async with client.stream(
                "GET", f"/v1/tasks/{other_task}/stream", headers={"X-API-Key": other}
            ) as theirs:
                assert theirs.status_code == 200
