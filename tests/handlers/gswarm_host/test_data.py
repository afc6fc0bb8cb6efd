"""The data pool: chunks from base64 or a URL, listed by device and type, moved and
transferred as queued tasks, deleted with `force` semantics."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runtime.services import Services
from runtime.store import NewTask
from runtime.store.placement import CHUNK_LABEL
from tests.handlers.gswarm_support import Make, finished, headers
from tests.support.envelope import data, error

PAYLOAD = bytes(range(256)) * 64


@pytest.fixture
def host(api_rest: Callable[[str], httpx.AsyncClient], gswarm: Services) -> httpx.AsyncClient:
    return api_rest("gswarm_host")


async def _create(host: httpx.AsyncClient, hdrs: dict[str, str], **body: object) -> dict[str, Any]:
    body.setdefault("data", base64.b64encode(PAYLOAD).decode())
    created = data(
        await host.post("/api/v1/data", json={"type": "input", "format": "tensor", **body}, headers=hdrs), 201
    )
    assert isinstance(created, dict)
    return created


async def test_a_base64_chunk_lands_on_dram_and_is_listed_by_device_and_type(
    host: httpx.AsyncClient, gswarm: Services
) -> None:
    hdrs = headers(gswarm)
    chunk = await _create(host, hdrs, metadata={"shape": [1, 64, 256], "dtype": "uint8"})
    assert str(chunk["chunk_id"]).startswith("chunk-") and chunk["size"] == len(PAYLOAD)
    assert chunk["locations"] == [{"device": "node1:dram", "status": "available", "emulated": False}]
    assert chunk["metadata"]["shape"] == [1, 64, 256] and chunk["metadata"]["access_count"] == 0
    assert (
        len(
            data(await host.get("/api/v1/data", params={"device": "dram", "type": "input"}, headers=hdrs))[
                "chunks"
            ]
        )
        == 1
    )
    assert data(await host.get("/api/v1/data", params={"device": "gpu0"}, headers=hdrs))["chunks"] == []
    assert data(await host.get("/api/v1/data", params={"type": "output"}, headers=hdrs))["chunks"] == []


async def test_a_chunk_from_a_url_and_its_move_to_the_gpu(
    host: httpx.AsyncClient, gswarm: Services, served: Make
) -> None:
    hdrs = headers(gswarm)
    checkpoint = served()
    chunk = await _create(host, hdrs, data=checkpoint.url, device="disk")
    assert chunk["size"] == len(checkpoint.blob)
    queued = data(
        await host.post(
            f"/api/v1/data/{chunk['chunk_id']}/move", json={"target_device": "gpu0"}, headers=hdrs
        ),
        202,
    )
    assert (await finished(gswarm, queued["task_id"])).status == "completed"
    moved = data(await host.get(f"/api/v1/data/{chunk['chunk_id']}", headers=hdrs))
    assert moved["locations"] == [{"device": "node1:gpu0", "status": "available", "emulated": True}]


async def test_a_chunk_bigger_than_the_device_is_refused(
    host: httpx.AsyncClient, gswarm: Services, served: Make
) -> None:
    big = served("big.bin", floats=2_500_000)  # 10 MB; dram holds 8 MiB
    refused = await host.post(
        "/api/v1/data", json={"data": big.url, "device": "dram"}, headers=headers(gswarm)
    )
    error(refused, 409, "RESOURCE_UNAVAILABLE")
    assert data(await host.get("/api/v1/data", headers=headers(gswarm)))["chunks"] == []


async def test_a_referenced_chunk_is_deleted_only_with_force(
    host: httpx.AsyncClient, gswarm: Services
) -> None:
    hdrs = headers(gswarm)
    chunk = await _create(host, hdrs)
    chunk_id = str(chunk["chunk_id"])
    # A task using it, not started (its node's queue is stopped for the test's purpose).
    gswarm.store.tasks.insert(
        NewTask(
            tenant_id="acme",
            type="gswarm.chunk_move",
            payload={},
            labels={CHUNK_LABEL: chunk_id},
            pool="node.nodeX",
        )
    )
    assert data(await host.get(f"/api/v1/data/{chunk_id}", headers=hdrs))["references"] == 1
    error(await host.delete(f"/api/v1/data/{chunk_id}", headers=hdrs), 409, "CONFLICT")
    assert (
        await host.delete(f"/api/v1/data/{chunk_id}", params={"force": "true"}, headers=hdrs)
    ).status_code == 204
    error(await host.get(f"/api/v1/data/{chunk_id}", headers=hdrs), 404, "NOT_FOUND")


async def test_chunks_are_the_tenants_own_and_bad_data_is_refused(
    host: httpx.AsyncClient, gswarm: Services
) -> None:
    chunk = await _create(host, headers(gswarm))
    other = headers(gswarm, "globex")
    assert data(await host.get("/api/v1/data", headers=other))["chunks"] == []
    error(await host.get(f"/api/v1/data/{chunk['chunk_id']}", headers=other), 404, "NOT_FOUND")
    error(await host.delete(f"/api/v1/data/{chunk['chunk_id']}", headers=other), 404, "NOT_FOUND")
    error(
        await host.post("/api/v1/data", json={"data": "not base64 !!"}, headers=other), 400, "INVALID_REQUEST"
    )
    error(
        await host.post("/api/v1/data", json={"data": "file:///etc/passwd"}, headers=other),
        400,
        "INVALID_REQUEST",
    )
