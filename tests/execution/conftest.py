"""Runtime fixtures: a gateway (REST over ASGI) with its runtime, per broker.

Brokers: `embedded` (always), Redis on 127.0.0.1:6379 (db 9) and RabbitMQ on
127.0.0.1:5672 (guest/guest). A missing server skips its tests locally and fails them
when CI is set. Stores: a SQLite file per test (PostgreSQL where a test asks for it).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import yaml

from runtime.config import ClusterConfig, HeartbeatConfig, PoolConfig, RetryPolicy, load_cluster_config
from runtime.execution.workers import PoolOptions, WorkerPool
from runtime.gateway.app import Platform
from runtime.services import Services
from runtime.services.auth import SCOPES
from runtime.settings import Settings
from runtime.store import TaskRecord

REDIS_URL = os.environ.get("GREY_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
AMQP_URL = os.environ.get("GREY_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
FINISHED = ("completed", "failed", "cancelled", "timeout")


def _reachable(url: str, default_port: int) -> str | None:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    try:
        with socket.create_connection((host, port), timeout=1):
            return None
    except OSError as error:
        return f"{host}:{port} ({error})"


def require(name: str, url: str, port: int) -> None:
    problem = _reachable(url, port)
    if problem is not None:
        message = f"{name} at {problem} is missing; these runtime tests need it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def broker_url_for(kind: str) -> str:
    if kind == "embedded":
        return "embedded"
    if kind == "redis":
        require("Redis", REDIS_URL, 6379)
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        return REDIS_URL
    require("RabbitMQ", AMQP_URL, 5672)
    return AMQP_URL


def test_cluster(**changes: Any) -> ClusterConfig:
    """Short heartbeats and backoffs, so failures and retries show within a test."""
    base = ClusterConfig(
        pools={"cpu": PoolConfig(nodes=1, threads_per_node=4)},
        retry=RetryPolicy(max_retries=3, backoff_base_seconds=0.05, backoff_max_seconds=0.5),
        heartbeat=HeartbeatConfig(interval_seconds=0.2, timeout_seconds=1.0),
    )
    return base.model_copy(update=changes)


ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Deployment:
    """Where worker processes apart from the gateway find the broker, the store and the cluster."""

    broker_url: str
    database_url: str
    cluster_file: Path

    @classmethod
    def write(
        cls,
        tmp_path: Path,
        broker_url: str,
        database_url: str,
        nodes: int,
        threads: int,
        timeout: float = 2.0,
    ) -> Deployment:
        """A cluster file with one cpu pool and heartbeats fast enough to see a death in a test."""
        cluster_file = tmp_path / "cluster.yaml"
        pools = {"cpu": {"nodes": nodes, "threads_per_node": threads}}
        heartbeat = {"interval_seconds": 0.3, "timeout_seconds": timeout}
        cluster_file.write_text(yaml.safe_dump({"pools": pools, "heartbeat": heartbeat}))
        return cls(broker_url, database_url, cluster_file)

    def cluster(self) -> ClusterConfig:
        return load_cluster_config(self.cluster_file)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a worker process of this deployment, plus `extra`."""
        return {
            **os.environ,
            "GREY_BROKER_URL": self.broker_url,
            "GREY_DATABASE_URL": self.database_url,
            "GREY_CLUSTER_CONFIG": str(self.cluster_file),
            "PYTHONPATH": str(ROOT),
            **extra,
        }


def start_worker_process(env: dict[str, str], threads: int, *options: str) -> subprocess.Popen[bytes]:
    """One cpu-pool worker process, as `grey worker` starts each of its children; output discarded."""
    command = [
        sys.executable,
        "-m",
        "runtime.execution.processes",
        "--pool",
        "cpu",
        "--threads",
        str(threads),
    ]
    return subprocess.Popen(
        [*command, *options], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


@dataclass
class Gateway:
    """One gateway process's worth of objects, plus helpers the tests share."""

    services: Services
    platform: Platform
    client: httpx.AsyncClient
    key: str
    pools: list[WorkerPool] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def store(self) -> Any:
        return self.services.store

    async def submit(self, expect: int = 201, **body: Any) -> dict[str, Any]:
        body.setdefault("type", "stateless")
        response = await self.client.post("/v1/tasks", json=body, headers=self.headers)
        assert response.status_code == expect, response.text
        return response.json()

    async def task(self, task_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/tasks/{task_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def record(self, task_id: str) -> TaskRecord:
        task = self.store.tasks.get(None, task_id)
        assert task is not None
        return task

    async def wait(
        self, task_ids: list[str] | str, statuses: tuple[str, ...] = FINISHED, timeout: float = 15.0
    ) -> list[TaskRecord]:
        """Until every task has one of `statuses` (read from the store)."""
        ids = [task_ids] if isinstance(task_ids, str) else task_ids
        deadline = time.monotonic() + timeout
        while True:
            records = [self.record(task_id) for task_id in ids]
            if all(r.status in statuses for r in records):
                return records
            if time.monotonic() > deadline:
                waiting = {r.task_id: r.status for r in records if r.status not in statuses}
                raise AssertionError(f"still not {statuses} after {timeout}s: {list(waiting.items())[:5]}")
            await asyncio.sleep(0.02)

    def pool(self, threads: int = 4, **options: Any) -> WorkerPool:
        pool = self.services.runtime.start_pool(PoolOptions(threads=threads, **options))
        self.pools.append(pool)
        return pool


_SHARED: dict[str, Platform] = {}


def _platform(services: Services, shared: bool) -> Platform:
    """The first gateway of a test reuses one REST app (building one takes ~0.3 s): only
    its dispatcher's services change. Further gateways of the same test get their own."""
    if not shared:
        return Platform.build(services)
    cached = _SHARED.get("platform")
    if cached is None:
        cached = _SHARED["platform"] = Platform.build(services)
    for gateway in cached.gateways.values():
        gateway.dispatcher.services = services
    return Platform(services, cached.gateways)


@pytest.fixture
async def make_gateway(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Builds gateways (several may share one store and broker); closes them all at the end."""
    made: list[Gateway] = []

    async def make(
        broker_url: str = "embedded",
        database_url: str | None = None,
        cluster: ClusterConfig | None = None,
        start: bool = True,
        worker_threads: int = 0,
        port: int | None = None,
    ) -> Gateway:
        settings = Settings(
            database_url=database_url or f"sqlite:///{tmp_path / 'grey.db'}",
            broker_url=broker_url,
            rest_port=port or 18080 + len(made),  # the port names the gateway's node
            credential_cache_seconds=60.0,
        )
        services = Services.open(settings, cluster=cluster or test_cluster())
        if broker_url.startswith("amqp") and not made:
            services.runtime.broker.flush_all()  # queues are shared by every test run
        platform = _platform(services, shared=not made)
        if start:
            platform.start_runtime(worker_threads=worker_threads)
        key = services.auth.create_key("acme", SCOPES)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=platform.rest), base_url="http://grey.test"
        )
        gateway = Gateway(services, platform, client, key)
        made.append(gateway)
        return gateway

    yield make
    for gateway in reversed(made):
        await gateway.client.aclose()
        await asyncio.to_thread(gateway.services.close)


@pytest.fixture(params=["embedded", "redis"])
def broker_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield broker_url_for(request.param)


@pytest.fixture
async def gateway(make_gateway: Callable[..., Any], broker_url: str) -> Gateway:
    """A started gateway (node, reaper, recovery) with no pool yet, on each broker."""
    return await make_gateway(broker_url=broker_url)
