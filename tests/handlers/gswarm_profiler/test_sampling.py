"""The runtime's own worker node samples itself for a session started through the API."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.execution.placement.devices import real_gpu_count
from runtime.gateway.app import Platform
from tests.support.envelope import data

Headers = dict[str, str]


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The runtime started (in-process worker nodes) with samplers that poll fast."""
    monkeypatch.setenv("GREY_PROFILER_POLL_SECONDS", "0.05")
    monkeypatch.setenv("GREY_PROFILER_HEARTBEAT_SECONDS", "0.5")
    return None


async def until(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("not in time")
        await asyncio.sleep(0.05)


async def test_the_worker_node_samples_for_an_active_session(
    running: None, workers: Platform, profiler_api: httpx.AsyncClient, admin: Headers
) -> None:
    node_ids = {pool.node_id for pool in workers.services.runtime.pools if pool.options.pool != "tee"}

    async def listed() -> list[dict[str, Any]]:
        clients = data(await profiler_api.get("/clients", headers=admin))["clients"]
        return [c for c in clients if c["client_id"] in node_ids and c["status"] == "healthy"]

    (client,) = await until(listed)
    assert client["gpu_source"] in ("absent", "hardware", "emulated")
    tee_ids = {pool.node_id for pool in workers.services.runtime.pools if pool.options.pool == "tee"}
    clients = data(await profiler_api.get("/clients", headers=admin))["clients"]
    assert not tee_ids & {c["client_id"] for c in clients}  # a TEE node runs no sampler

    body = {"name": "live", "sampling_frequency_ms": 100}
    data(await profiler_api.post("/profiling/start", json=body, headers=admin), 201)

    async def sampled() -> list[dict[str, Any]]:
        metrics = data(await profiler_api.get("/metrics/latest", headers=admin))["metrics"]
        return [m for m in metrics if m["client_id"] == client["client_id"] and m["session"] == "live"]

    (frame,) = await until(sampled)
    assert frame["gpu_source"] == client["gpu_source"]
    assert frame["memory"]["total"] > 0 and frame["cpu"]["count"] >= 1

    async def counted() -> int:
        status = data(await profiler_api.get("/status", headers=admin))
        return int(status["active_sessions"][0]["frames_collected"] >= 3)

    await until(counted)
    stopped = data(await profiler_api.post("/profiling/stop", json={"name": "live"}, headers=admin))
    await asyncio.sleep(0.3)
    (after,) = data(await profiler_api.get("/profiling/sessions", headers=admin))["sessions"]
    assert after["frames_collected"] == stopped["frames_collected"] >= 3


async def test_the_in_process_placement_node_reports_its_gpus_as_it_has_them(
    running: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    every_api: Platform,
    profiler_api: httpx.AsyncClient,
    admin: Headers,
) -> None:
    """`grey serve`'s node1: with no GPU here its gpu0 is emulated, and the profiler says so on
    the client and on every frame (never a measured figure)."""
    monkeypatch.setenv("GREY_PLACEMENT_EMBEDDED_NODE", "node1")
    monkeypatch.setenv("GREY_PLACEMENT_ROOT", str(tmp_path / "placement"))
    monkeypatch.setenv("GREY_PLACEMENT_GPU_BYTES", str(2 * 2**30))
    every_api.start_runtime(worker_threads=2)
    expected = "hardware" if real_gpu_count() else "emulated"

    async def node1() -> list[dict[str, Any]]:
        clients = data(await profiler_api.get("/clients", headers=admin))["clients"]
        return [c for c in clients if c["client_id"] == "node1" and c["status"] == "healthy"]

    (client,) = await until(node1)
    assert client["gpu_source"] == expected
    if expected == "emulated":
        gpu0 = {"device_id": 0, "name": "emulated", "memory_total": 2048, "emulated": True}
        assert client["gpus"] == [gpu0]
    body = {"name": "node1-run", "sampling_frequency_ms": 100}
    data(await profiler_api.post("/profiling/start", json=body, headers=admin), 201)

    async def sampled() -> list[dict[str, Any]]:
        metrics = data(await profiler_api.get("/metrics/latest", headers=admin))["metrics"]
        return [m for m in metrics if m["client_id"] == "node1" and m["session"] == "node1-run"]

    (frame,) = await until(sampled)
    assert frame["gpu_source"] == expected
    if expected == "emulated":
        (gpu,) = frame["gpus"]
        assert gpu["emulated"] is True and "utilization_percent" not in gpu and "temperature_c" not in gpu
