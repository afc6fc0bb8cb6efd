"""GET /v1/cluster/health and gRPC GetClusterHealth: `healthy` is false when work cannot run
(a pool with pending tasks and no active worker, the broker unreachable), `consensus` names
the coordinator; and a submit's `estimated_start` from queue and measured throughput."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runtime.execution.workers import PoolOptions
from runtime.gateway.app import Platform
from runtime.services import Services
from runtime.services.estimates import StartEstimates
from runtime.store import NodeRecord
from runtime.store.coltypes import utc_now
from tests.support.transports import GrpcCaller, RestCaller

ECHO: dict[str, Any] = {"type": "stateless", "payload": {"function": "echo", "data": {"k": "v"}}}
# gRPC answers leave out fields at their default (false, 0, empty): hence `.get`.


async def until(check: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, f"not {what} after {timeout}s"
        await asyncio.sleep(0.05)


async def test_pending_work_without_an_active_worker_is_unhealthy(
    call: RestCaller | GrpcCaller, key: str, services: Services, platform: Platform
) -> None:
    platform.start_runtime(worker_threads=0)  # the gateway's node only
    health = await call("getClusterHealth", key)
    assert health.data.get("healthy") is True and not health.data.get("problems")

    submitted = await call("submitTask", key, **ECHO)
    health = await call("getClusterHealth", key)
    assert not health.data.get("healthy")
    assert health.data["problems"] == ["pool cpu: 1 pending tasks and no active worker"]

    services.store.nodes.upsert(  # a worker that takes no work counts for nothing
        NodeRecord(
            "grey-worker-q", "worker", "quarantined", "", utc_now(), pool="cpu", last_heartbeat=utc_now()
        )
    )
    health = await call("getClusterHealth", key)
    assert not health.data.get("healthy")

    services.runtime.start_pool(PoolOptions(threads=2))

    async def finished() -> bool:
        task = await call("getTask", key, task_id=submitted.data["task_id"])
        return bool(task.data.get("status") == "completed")

    await until(finished, "completed")
    health = await call("getClusterHealth", key)
    assert health.data.get("healthy") is True and not health.data.get("problems")


async def test_an_unreachable_broker_is_unhealthy(
    call: RestCaller | GrpcCaller, key: str, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.runtime, "queue_depth", lambda: None)
    health = await call("getClusterHealth", key)
    assert not health.data.get("healthy") and "broker unreachable" in health.data["problems"]


async def test_consensus_reports_the_coordinator_lease(
    call: RestCaller | GrpcCaller, key: str, services: Services, platform: Platform
) -> None:
    before = (await call("getClusterHealth", key)).data["consensus"]
    assert not before.get("leader") and not before.get("leader_live")  # nobody took it yet
    platform.start_runtime(worker_threads=0)  # the gateway's node competes for the lease

    async def live() -> dict[str, Any] | None:
        found = (await call("getClusterHealth", key)).data["consensus"]
        return found if found.get("leader_live") else None

    consensus = await until(live, "a live leader")
    assert consensus["leader"] == services.node_id
    assert int(consensus["term"]) == 1 and int(consensus["members"]) == 1  # int64: a string in gRPC
    assert consensus["quorum_satisfied"] is True
    expires = datetime.fromisoformat(consensus["lease_expires_at"].replace("Z", "+00:00"))
    assert expires > datetime.now(UTC) - timedelta(seconds=1)


async def test_estimated_start_is_null_until_throughput_is_measured(
    call: RestCaller | GrpcCaller, key: str, platform: Platform
) -> None:
    first = await call("submitTask", key, **ECHO)
    assert first.ok and not first.data.get("estimated_start")  # nothing finished yet
    platform.start_runtime(worker_threads=2)

    async def estimated() -> dict[str, Any] | None:
        answer = await call("submitTask", key, **ECHO)
        return answer.data if answer.data.get("estimated_start") else None

    answer = await until(estimated, "estimated")
    created = datetime.fromisoformat(answer["created_at"].replace("Z", "+00:00"))
    start = datetime.fromisoformat(answer["estimated_start"].replace("Z", "+00:00"))
    assert start >= created


class _Figures:
    def __init__(self, finished: dict[str, int], pending: dict[tuple[str, str], int]) -> None:
        self.finished, self.pending = finished, pending

    def completed_by_pool_since(self, since: datetime) -> dict[str, int]:
        return self.finished

    def pending_by_queue(self) -> dict[tuple[str, str], int]:
        return self.pending


class _Store:
    def __init__(self, figures: _Figures) -> None:
        self.figures = figures


def test_the_estimate_is_the_queue_ahead_over_the_measured_rate() -> None:
    figures = _Figures({"cpu": 120}, {("cpu", "normal"): 30, ("cpu", "critical"): 4, ("cpu", "low"): 500})
    estimates = StartEstimates(_Store(figures), refresh_seconds=3600)  # type: ignore[arg-type]
    now = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert estimates.estimate("cpu", "normal", now) is None  # not measured yet
    estimates.refresh()
    # 120 finished in the last 60 s: 2 tasks/s. Ahead of a normal task: 4 critical + 30 normal.
    assert estimates.estimate("cpu", "normal", now) == now + timedelta(seconds=17)
    assert estimates.estimate("cpu", "critical", now) == now + timedelta(seconds=2)
    assert estimates.estimate("cpu", "low", now) == now + timedelta(seconds=267)
    assert estimates.estimate("gpu", "normal", now) is None  # nothing of that pool finished
