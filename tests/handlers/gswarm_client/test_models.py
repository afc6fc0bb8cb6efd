"""The client API of node1: download, move, copy, delete, local models, resources — queued
Grey tasks on the node's own queue, real bytes on its devices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runtime.services import Services
from tests.handlers.gswarm_support import Make, downloaded, finished, headers
from tests.support.envelope import data, error


@pytest.fixture
def client(api_rest: Callable[[str], httpx.AsyncClient], gswarm: Services) -> httpx.AsyncClient:
    return api_rest("gswarm_client")


async def test_download_answers_queued_with_position_and_estimate_then_the_bytes_arrive(
    client: httpx.AsyncClient, gswarm: Services, served: Make
) -> None:
    hdrs = headers(gswarm)
    checkpoint = served()
    queued = data(
        await client.post(
            "/api/v1/models/tiny/download",
            json={"source_url": checkpoint.url, "priority": "high"},
            headers=hdrs,
        ),
        202,
    )
    assert queued["status"] == "queued" and queued["position"] >= 0 and queued["estimated_time"] >= 0
    task = await finished(gswarm, queued["task_id"])
    assert (task.status, task.type, task.pool, task.priority) == (
        "completed",
        "gswarm.download",
        "node.node1",
        "high",
    )
    assert task.result["sha256"] == checkpoint.sha256
    local = data(await client.get("/api/v1/models", headers=hdrs))
    assert local["node"] == "node1"
    assert [(m["model_name"], m["locations"], m["status"]) for m in local["models"]] == [
        ("tiny", ["disk"], "ready")
    ]


async def test_move_to_the_emulated_gpu_says_emulated_and_drops_the_source(
    client: httpx.AsyncClient, gswarm: Services, served: Make
) -> None:
    hdrs = headers(gswarm)
    await downloaded(client, gswarm, hdrs, "tiny", served())
    queued = data(
        await client.post(
            "/api/v1/models/tiny/move", json={"source_device": "disk", "target_device": "gpu0"}, headers=hdrs
        ),
        202,
    )
    task = await finished(gswarm, queued["task_id"])
    assert task.status == "completed", task.error
    [model] = data(await client.get("/api/v1/models", headers=hdrs))["models"]
    assert model["locations"] == ["gpu0"] and model["emulated"] is True


async def test_a_move_that_does_not_fit_fails_and_keeps_the_source(
    client: httpx.AsyncClient, gswarm: Services, served: Make
) -> None:
    hdrs = headers(gswarm)
    await downloaded(
        client, gswarm, hdrs, "big", served("big.safetensors", floats=1_500_000)
    )  # 6 MB > gpu0's 4 MiB
    queued = data(
        await client.post("/api/v1/models/big/move", json={"target_device": "gpu0"}, headers=hdrs), 202
    )
    task = await finished(gswarm, queued["task_id"])
    assert task.status == "failed" and "ResourceUnavailable" in task.error["message"]
    [model] = data(await client.get("/api/v1/models", headers=hdrs))["models"]
    assert model["locations"] == ["disk"]


async def test_a_move_depending_on_a_failed_download_fails_with_dependency_failed(
    client: httpx.AsyncClient, gswarm: Services, served: Make
) -> None:
    hdrs = headers(gswarm)
    checkpoint = served()
    bad = data(
        await client.post(
            "/api/v1/models/tiny/download", json={"source_url": checkpoint.url + ".missing"}, headers=hdrs
        ),
        202,
    )
    move = data(
        await client.post(
            "/api/v1/models/tiny/copy",
            json={"source_device": "disk", "target_device": "dram", "dependencies": [bad["task_id"]]},
            headers=hdrs,
        ),
        202,
    )
    assert (await finished(gswarm, bad["task_id"])).status == "failed"
    task = await finished(gswarm, move["task_id"])
    assert task.status == "failed" and task.error["code"] == "dependency_failed"


async def test_delete_from_one_device_keeps_the_others(
    client: httpx.AsyncClient, gswarm: Services, served: Make
) -> None:
    hdrs = headers(gswarm)
    await downloaded(client, gswarm, hdrs, "tiny", served())
    queued = data(
        await client.post("/api/v1/models/tiny/copy", json={"target_device": "dram"}, headers=hdrs), 202
    )
    assert (await finished(gswarm, queued["task_id"])).status == "completed"
    assert (
        await client.delete("/api/v1/models/tiny", params={"device": "dram"}, headers=hdrs)
    ).status_code == 204
    [model] = data(await client.get("/api/v1/models", headers=hdrs))["models"]
    assert model["locations"] == ["disk"]
    error(
        await client.delete("/api/v1/models/tiny", params={"device": "gpu0"}, headers=hdrs), 404, "NOT_FOUND"
    )


async def test_resources_report_devices_with_the_emulated_gpu(
    client: httpx.AsyncClient, gswarm: Services
) -> None:
    resources = data(await client.get("/api/v1/resources", headers=headers(gswarm)))
    assert resources["node"] == "node1"
    assert set(resources["storage"]) == {"disk", "dram", "gpu0"}
    assert resources["storage"]["dram"]["total"] == 8 * 1024 * 1024
    assert resources["storage"]["gpu0"]["emulated"] is True
    assert resources["compute"]["cpu"]["cores"] >= 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"source_url": "file:///etc/passwd"}, 400, "INVALID_REQUEST"),
        ({"source_url": "http://127.0.0.1/x", "target_device": "../../etc"}, 400, "INVALID_REQUEST"),
        ({"source_url": "http://127.0.0.1/x", "target_device": "node9:disk"}, 404, "NOT_FOUND"),
    ],
)
async def test_hostile_downloads_are_refused(
    client: httpx.AsyncClient, gswarm: Services, body: dict[str, Any], status: int, code: str
) -> None:
    error(await client.post("/api/v1/models/tiny/download", json=body, headers=headers(gswarm)), status, code)


async def test_another_tenants_models_are_invisible_and_cannot_be_moved(
    client: httpx.AsyncClient, gswarm: Services, served: Make
) -> None:
    await downloaded(client, gswarm, headers(gswarm), "tiny", served())
    other = headers(gswarm, "globex")
    assert data(await client.get("/api/v1/models", headers=other))["models"] == []
    error(
        await client.post("/api/v1/models/tiny/move", json={"target_device": "dram"}, headers=other),
        404,
        "MODEL_NOT_FOUND",
    )
    error(await client.delete("/api/v1/models/tiny", headers=other), 404, "MODEL_NOT_FOUND")
