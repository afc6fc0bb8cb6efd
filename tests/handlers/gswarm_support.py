"""Fixtures of the gswarm placement handler tests: the runtime started with the in-process
placement node `node1` (as `grey serve` runs it), its devices under the test's directory,
a checkpoint served over HTTP, and helpers for the envelope.

Import the fixtures into a test module: `from tests.handlers.gswarm_support import gswarm`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.execution.placement import peers
from runtime.services import Services
from tests.execution.placement.conftest import Checkpoint, served  # noqa: F401  (a fixture)
from tests.support.envelope import data
from tests.support.platform import make_key

FINISHED = ("completed", "failed", "cancelled", "timeout")


@pytest.fixture
def gswarm(
    services: Services, every_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    """The runtime with `node1` (disk, dram 8 MiB, emulated gpu0 4 MiB)."""
    monkeypatch.setenv("GREY_PLACEMENT_ROOT", str(tmp_path / "placement"))
    monkeypatch.setenv("GREY_PLACEMENT_FILE_ROOTS", str(tmp_path.resolve()))
    monkeypatch.setenv("GREY_PLACEMENT_DRAM_BYTES", str(8 * 1024 * 1024))
    monkeypatch.setenv("GREY_PLACEMENT_GPU_BYTES", str(4 * 1024 * 1024))
    monkeypatch.setenv("GREY_PLACEMENT_PROBE_BYTES", "0")
    monkeypatch.setenv("GREY_PLACEMENT_EMBEDDED_NODE", "node1")
    monkeypatch.delenv("GREY_GSWARM_CLIENT_NODE", raising=False)
    services.start_runtime(worker_threads=0)
    yield services
    services.runtime.stop(grace_seconds=1.0)
    peers.forget()


def headers(services: Services, tenant: str = "acme") -> dict[str, str]:
    return {"X-API-Key": make_key(services, tenant)}


async def finished(services: Services, task_id: str, timeout: float = 20.0) -> Any:
    """The task once it has finished (read from the store)."""
    deadline = time.monotonic() + timeout
    while True:
        task = services.store.tasks.get(None, task_id)
        assert task is not None
        if task.status in FINISHED:
            return task
        assert time.monotonic() < deadline, f"{task_id} still {task.status}"
        await asyncio.sleep(0.05)


async def downloaded(
    client: httpx.AsyncClient,
    services: Services,
    hdrs: dict[str, str],
    name: str,
    checkpoint: Checkpoint,
    device: str = "disk",
) -> Any:
    """Downloads `checkpoint` as model `name` through the client API and waits for it."""
    queued = data(
        await client.post(
            f"/api/v1/models/{name}/download",
            json={"source_url": checkpoint.url, "target_device": device, "model_type": "llm"},
            headers=hdrs,
        ),
        202,
    )
    task = await finished(services, queued["task_id"])
    assert task.status == "completed", task.error
    return queued


Make = Callable[..., Checkpoint]
