"""The host API's model registry and locations: the reference's shapes in the envelope,
201/204, MODEL_NOT_FOUND, CONFLICT, locations listed only while the bytes are there."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from runtime.services import Services, placement
from tests.handlers.gswarm_support import Make, downloaded, finished, headers
from tests.support.envelope import data, error

REGISTER = {
    "model_name": "llama-7b",
    "model_type": "llm",
    "model_size": 13968179200,
    "source_url": "https://huggingface.co/meta-llama/Llama-2-7b",
    "metadata": {"framework": "pytorch", "precision": "fp16"},
}


@pytest.fixture
def host(api_rest: Callable[[str], httpx.AsyncClient], gswarm: Services) -> httpx.AsyncClient:
    return api_rest("gswarm_host")


@pytest.fixture
def client(api_rest: Callable[[str], httpx.AsyncClient], gswarm: Services) -> httpx.AsyncClient:
    return api_rest("gswarm_client")


async def test_register_get_list_delete_as_the_reference_shows(
    host: httpx.AsyncClient, gswarm: Services
) -> None:
    hdrs = headers(gswarm)
    created = data(await host.post("/api/v1/models", json=REGISTER, headers=hdrs), 201)
    assert (created["model_name"], created["status"], created["locations"]) == ("llama-7b", "registered", [])
    detail = data(await host.get("/api/v1/models/llama-7b", headers=hdrs))
    assert detail["metadata"]["framework"] == "pytorch" and detail["metadata"]["created_at"].endswith("Z")
    assert detail["model_size"] == 13968179200
    listed = data(await host.get("/api/v1/models", params={"type": "llm", "per_page": 1}, headers=hdrs))
    assert (listed["total"], listed["page"], listed["per_page"], len(listed["models"])) == (1, 1, 1, 1)
    assert data(await host.get("/api/v1/models", params={"type": "cnn"}, headers=hdrs))["total"] == 0
    assert (await host.delete("/api/v1/models/llama-7b", headers=hdrs)).status_code == 204
    error(await host.get("/api/v1/models/llama-7b", headers=hdrs), 404, "MODEL_NOT_FOUND")


async def test_registering_a_name_twice_is_a_conflict(host: httpx.AsyncClient, gswarm: Services) -> None:
    hdrs = headers(gswarm)
    data(await host.post("/api/v1/models", json=REGISTER, headers=hdrs), 201)
    error(await host.post("/api/v1/models", json=REGISTER, headers=hdrs), 409, "CONFLICT")


async def test_locations_follow_the_bytes(
    host: httpx.AsyncClient, client: httpx.AsyncClient, gswarm: Services, served: Make
) -> None:
    hdrs = headers(gswarm)
    await downloaded(client, gswarm, hdrs, "tiny", served())
    found = data(await host.get("/api/v1/models/tiny/locations", headers=hdrs))
    assert [(loc["device"], loc["status"], loc["emulated"]) for loc in found["locations"]] == [
        ("node1:disk", "ready", False)
    ]
    queued = data(
        await client.post("/api/v1/models/tiny/copy", json={"target_device": "gpu0"}, headers=hdrs), 202
    )
    assert (await finished(gswarm, queued["task_id"])).status == "completed"
    model = data(await host.get("/api/v1/models/tiny", headers=hdrs))
    assert model["locations"] == ["node1:disk", "node1:gpu0"] and model["status"] == "ready"
    assert data(await host.get("/api/v1/models", params={"location": "gpu0"}, headers=hdrs))["total"] == 1
    assert (await host.delete("/api/v1/models/tiny/locations/node1:gpu0", headers=hdrs)).status_code == 204
    assert data(await host.get("/api/v1/models/tiny", headers=hdrs))["locations"] == ["node1:disk"]
    # A location is added only where the bytes are.
    error(
        await host.post("/api/v1/models/tiny/locations", json={"device": "node1:dram"}, headers=hdrs),
        409,
        "CONFLICT",
    )
    added = data(
        await host.post("/api/v1/models/tiny/locations", json={"device": "node1:disk"}, headers=hdrs), 201
    )
    assert added["device"] == "node1:disk"


@pytest.fixture
def running_service() -> Iterator[None]:
    def in_use(services: Services, tenant: str, name: str) -> list[str]:
        return ["tiny-node1-8080"] if name == "tiny" else []

    placement.IN_USE.append(in_use)
    yield
    placement.IN_USE.remove(in_use)


async def test_deleting_a_model_with_running_services_needs_force(
    host: httpx.AsyncClient, client: httpx.AsyncClient, gswarm: Services, served: Make, running_service: None
) -> None:
    hdrs = headers(gswarm)
    await downloaded(client, gswarm, hdrs, "tiny", served())
    refused = error(await host.delete("/api/v1/models/tiny", headers=hdrs), 409, "CONFLICT")
    assert refused["details"]["services"] == ["tiny-node1-8080"]
    assert (
        await host.delete("/api/v1/models/tiny", params={"force": "true"}, headers=hdrs)
    ).status_code == 204
    assert not list(
        (gswarm.settings.database_url and placement.repo(gswarm).locations("acme", "model")) or []
    )


async def test_another_tenant_sees_nothing(host: httpx.AsyncClient, gswarm: Services) -> None:
    data(await host.post("/api/v1/models", json=REGISTER, headers=headers(gswarm)), 201)
    other = headers(gswarm, "globex")
    assert data(await host.get("/api/v1/models", headers=other))["total"] == 0
    error(await host.get("/api/v1/models/llama-7b", headers=other), 404, "MODEL_NOT_FOUND")
    error(await host.get("/api/v1/models/llama-7b/locations", headers=other), 404, "MODEL_NOT_FOUND")
    error(await host.delete("/api/v1/models/llama-7b", headers=other), 404, "MODEL_NOT_FOUND")
    # ...and may register the same name for itself.
    data(await host.post("/api/v1/models", json=REGISTER, headers=other), 201)


@pytest.mark.parametrize("name", ["..", "a%2Fb", "..%2F..%2Fetc", "x" * 200])
async def test_names_that_would_leave_the_device_root_are_refused(
    host: httpx.AsyncClient, gswarm: Services, name: str
) -> None:
    response = await host.get(f"/api/v1/models/{name}", headers=headers(gswarm))
    assert response.status_code in (400, 404), response.text
    assert response.json()["success"] is False
    refused = await host.post(
        "/api/v1/models", json={**REGISTER, "model_name": name}, headers=headers(gswarm)
    )
    error(refused, 400, "INVALID_REQUEST")
