"""/ws/telemetry against live `grey serve` processes, with a Python client written from the
CloudAI reference's JavaScript example:

    const ws = new WebSocket('ws://localhost:8080/ws/telemetry');
    ws.onmessage = (event) => { const data = JSON.parse(event.data); console.log('Telemetry:', data); };

Two gateway processes share one PostgreSQL store and a Redis broker; a third process (this
test) changes the cluster, and both gateways' clients must hear of it. The figures of the
delivery latency are printed (`-s` shows them) and held to a generous bound here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import URL
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from runtime.gateway.contracts import CONTRACTS
from runtime.store import NodeRecord, Store
from runtime.store.coltypes import utc_now
from tests.conftest import empty_store
from tests.e2e.conftest import ROOT, Server, _free_ports, launch

REDIS_URL = os.environ.get("GREY_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
CHANGES = 40  # worker registrations and disconnections, one every 50 ms


def _require_redis() -> None:
    try:
        with socket.create_connection(("127.0.0.1", int(REDIS_URL.split(":")[2].split("/")[0])), timeout=1):
            return
    except OSError as error:
        message = f"Redis at {REDIS_URL} is missing ({error}); the two-gateway test needs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class Cluster:
    first: Server
    second_port: int  # CloudAI's REST port of the second gateway
    database_url: str


def _second_gateway(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    """Another `grey serve` on the same store (it prints no key: the store has one), on its
    own ports; returns once its CloudAI listener accepts connections."""
    ports = _free_ports({})
    placed = {f"{CONTRACTS[name].env_prefix}REST_PORT": str(rest) for name, (rest, _) in ports.items()}
    placed |= {
        f"{CONTRACTS[name].env_prefix}GRPC_PORT": str(grpc) for name, (_, grpc) in ports.items() if grpc
    }
    rest, grpc = ports["grey"]
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "serve", "--rest-port", str(rest), "--grpc-port", str(grpc)],
        cwd=ROOT,
        env={**os.environ, "GREY_HOME": str(home), **placed, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    port = ports["cloudai"][0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return process, port
        time.sleep(0.1)
    process.kill()
    pytest.fail("the second grey serve did not listen")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, postgres_url: URL) -> Iterator[Cluster]:
    _require_redis()
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    with Store.open(postgres_url) as store:
        empty_store(store)
    database = postgres_url.render_as_string(hide_password=False)
    env = {
        "GREY_DATABASE_URL": database,
        "GREY_BROKER_URL": REDIS_URL,
        "GREY_WORKER_THREADS": "0",
        "GREY_CLOUDAI_TELEMETRY_INTERVAL_SECONDS": "1",
    }
    first, server = launch(tmp_path_factory.mktemp("gateway-a"), **env)
    second, port = _second_gateway(tmp_path_factory.mktemp("gateway-b"), env)
    try:
        yield Cluster(server, port, database)
    finally:
        for process in (first, second):
            process.terminate()
        for process in (first, second):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _url(port: int, path: str = "/ws/telemetry") -> str:
    return f"ws://127.0.0.1:{port}{path}"


async def test_the_references_javascript_client_written_in_python_receives_telemetry(
    cluster: Cluster,
) -> None:
    headers = {"X-API-Key": cluster.first.admin_key}  # Grey requires a key; the reference has none
    async with connect(_url(cluster.first.ports["cloudai"][0]), additional_headers=headers) as ws:
        data = json.loads(await ws.recv())  # ws.onmessage → JSON.parse(event.data)
        print("Telemetry:", data)
    assert data["type"] == "telemetry_update"
    assert set(data["data"]) == {"workers", "tasks", "cluster"}
    assert set(data["data"]["cluster"]) == {
        "total_workers",
        "active_workers",
        "available_cpu",
        "available_memory",
    }


async def test_the_key_as_a_browser_sends_it_works_too(cluster: Cluster) -> None:
    port = cluster.first.ports["cloudai"][0]
    async with connect(_url(port), subprotocols=["api_key", cluster.first.admin_key]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "api_key"
        assert json.loads(await ws.recv())["type"] == "telemetry_update"


async def test_without_a_key_the_upgrade_is_refused_with_401_in_cloudais_envelope(cluster: Cluster) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(_url(cluster.first.ports["cloudai"][0])):
            pass
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["error"]["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize("api", list(CONTRACTS))
async def test_an_upgrade_on_a_rest_path_of_a_live_server_is_a_404_not_a_500(
    cluster: Cluster, api: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(_url(cluster.first.ports[api][0], "/v1/tasks")):
            pass
    assert refused.value.response.status_code == 404
    assert "error" in json.loads(refused.value.response.body)


def _node(node_id: str, status: str) -> NodeRecord:
    now = utc_now()
    capacity = {"cpu_cores": 4.0, "memory_gb": 8.0, "storage_gb": 50.0, "gpus": 0}
    return NodeRecord(
        node_id=node_id,
        role="worker",
        status=status,
        address="127.0.0.1:0",
        started_at=now - timedelta(seconds=1),
        pool="cpu",
        last_heartbeat=now,
        resources=dict(capacity),
        info={"capacity": capacity, "containers": False, "containers_reason": "test"},
    )


async def _collect(port: int, key: str, until: set[str], seen: dict[str, float]) -> None:
    async with connect(_url(port), additional_headers={"X-API-Key": key}) as ws:
        while not until <= set(seen):
            message = json.loads(await ws.recv())
            if message["type"] in ("worker_registered", "worker_disconnected"):
                seen.setdefault(f"{message['type']}:{message['data']['worker_id']}", time.time())


async def test_events_reach_clients_of_both_gateways_within_250ms_at_p95(cluster: Cluster) -> None:
    key = cluster.first.admin_key
    names = [f"latency-{n}" for n in range(CHANGES // 2)]
    expected = {f"worker_registered:{n}" for n in names} | {f"worker_disconnected:{n}" for n in names}
    seen: list[dict[str, float]] = [{}, {}]
    ports = [cluster.first.ports["cloudai"][0], cluster.second_port]
    clients = [asyncio.ensure_future(_collect(p, key, expected, s)) for p, s in zip(ports, seen, strict=True)]
    await asyncio.sleep(1.0)  # both connected and subscribed
    changed: dict[str, float] = {}
    store = Store.open(cluster.database_url)
    try:
        for name in names:
            await asyncio.to_thread(store.nodes.upsert, _node(name, "active"))
            changed[f"worker_registered:{name}"] = time.time()
            await asyncio.sleep(0.05)
            await asyncio.to_thread(store.nodes.set_status, name, "down")
            changed[f"worker_disconnected:{name}"] = time.time()
            await asyncio.sleep(0.05)
        await asyncio.wait_for(asyncio.gather(*clients), 15)
    finally:
        for client in clients:
            client.cancel()
        store.dispose()
    figures: list[float] = []
    for gateway, received in enumerate(seen):
        latencies = sorted(1000 * (received[event] - changed[event]) for event in expected)
        p50 = statistics.median(latencies)
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        figure = f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {latencies[-1]:.1f} ms"
        print(f"gateway {gateway + 1}: {len(latencies)} events, {figure}")
        figures.append(p95)
    assert max(figures) < 1000, figures  # the target is 250 ms; the bound leaves room for a busy CI host
