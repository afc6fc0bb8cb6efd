"""gswarm host API: services deployed as real serving processes on placement nodes, stopped,
isolated per tenant; predict routed to a warm replica or cold-started, timed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from runtime.execution.serving.checkpoint import IN_DIM, weights
from runtime.execution.serving.host import port_is_free
from runtime.services import Services
from tests.support.platform import make_key
from tests.support.serving import SEED

Client = Callable[[str], httpx.AsyncClient]


def _h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


async def _until(client: httpx.AsyncClient, key: str, service_id: str, *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        answer = await client.get(f"/api/v1/services/{service_id}", headers=_h(key))
        data = answer.json()["data"]
        if data["status"] in statuses:
            return dict(data)
        assert time.monotonic() < deadline, data
        await asyncio.sleep(0.05)


async def test_a_deployed_replica_runs_and_answers_predictions_from_its_checkpoint(
    api_rest: Client, key: str, model_on: Callable[..., Path]
) -> None:
    model_on("tiny", "node1")
    host = api_rest("gswarm_host")
    answer = await host.post("/api/v1/services", json={"model_name": "tiny"}, headers=_h(key))
    assert answer.status_code == 201, answer.text
    (service,) = answer.json()["data"]["services"]
    assert service["status"] == "starting" and service["node"] == "node1" and service["device"] == "disk"
    assert service["service_id"] == f"tiny-node1-{service['port']}"
    running = await _until(host, key, service["service_id"], "running", "failed")
    assert running["status"] == "running", running
    row = np.linspace(-1, 1, IN_DIM, dtype=np.float32)
    direct = httpx.post(f"{running['url']}/v1/predict", json={"inputs": row.tolist()}).json()
    weight, bias = weights(SEED)
    assert np.allclose(direct["outputs"], row @ weight + bias, atol=1e-4)
    routed = await host.post("/api/v1/models/tiny/predict", json={"inputs": row.tolist()}, headers=_h(key))
    assert routed.status_code == 200, routed.text
    data = routed.json()["data"]
    assert data["service_id"] == service["service_id"] and data["cold_start"] is False
    assert np.allclose(data["outputs"], row @ weight + bias, atol=1e-4)


async def test_replicas_spread_over_two_nodes_and_stop_frees_their_ports(
    api_rest: Client, key: str, model_on: Callable[..., Path]
) -> None:
    model_on("tiny", "node1", "node2")
    host = api_rest("gswarm_host")
    body = {"model_name": "tiny", "nodes": ["node1", "node2"], "config": {"replicas": 2}}
    answer = await host.post("/api/v1/services", json=body, headers=_h(key))
    assert answer.status_code == 201, answer.text
    services = answer.json()["data"]["services"]
    assert sorted(s["node"] for s in services) == ["node1", "node2"]
    for service in services:
        assert (await _until(host, key, service["service_id"], "running", "failed"))["status"] == "running"
    listed = (await host.get("/api/v1/services", headers=_h(key))).json()["data"]["services"]
    assert {s["service_id"] for s in listed} == {s["service_id"] for s in services}
    for service in services:
        stopped = await host.delete(f"/api/v1/services/{service['service_id']}", headers=_h(key))
        assert stopped.status_code == 204
        assert (await _until(host, key, service["service_id"], "stopped"))["status"] == "stopped"
        assert port_is_free("127.0.0.1", service["port"])


async def test_predict_without_a_replica_cold_starts_one_and_times_it(
    api_rest: Client, key: str, model_on: Callable[..., Path]
) -> None:
    model_on("tiny", "node2")
    host = api_rest("gswarm_host")
    first = await host.post("/api/v1/models/tiny/predict", json={"inputs": "hello world"}, headers=_h(key))
    assert first.status_code == 200, first.text
    cold = first.json()["data"]
    assert cold["cold_start"] is True and cold["node"] == "node2"
    assert cold["cold_start_ms"] > 0 and cold["load_time"] == pytest.approx(cold["cold_start_ms"] / 1000)
    second = (
        await host.post("/api/v1/models/tiny/predict", json={"inputs": "hello world"}, headers=_h(key))
    ).json()
    assert second["data"]["cold_start"] is False and second["data"]["service_id"] == cold["service_id"]
    assert second["data"]["outputs"] == cold["outputs"]


async def test_another_tenant_neither_sees_nor_stops_your_services(
    api_rest: Client, key: str, services: Services, model_on: Callable[..., Path]
) -> None:
    model_on("tiny", "node1")
    host = api_rest("gswarm_host")
    service = (await host.post("/api/v1/services", json={"model_name": "tiny"}, headers=_h(key))).json()[
        "data"
    ]["services"][0]
    other = make_key(services, "intruder")
    assert (await host.get("/api/v1/services", headers=_h(other))).json()["data"]["services"] == []
    for answer in (
        await host.get(f"/api/v1/services/{service['service_id']}", headers=_h(other)),
        await host.delete(f"/api/v1/services/{service['service_id']}", headers=_h(other)),
    ):
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "NOT_FOUND"
    predicted = await host.post("/api/v1/models/tiny/predict", json={"inputs": "x"}, headers=_h(other))
    assert predicted.status_code == 404 and predicted.json()["error"]["code"] == "MODEL_NOT_FOUND"
    assert (await _until(host, key, service["service_id"], "running", "failed"))["status"] == "running"


BAD_DEPLOYS: list[tuple[dict[str, Any], int, str]] = [
    ({"model_name": "ghost"}, 404, "MODEL_NOT_FOUND"),
    ({"model_name": "tiny", "device": "gpu0"}, 409, "RESOURCE_UNAVAILABLE"),  # not on that device
    ({"model_name": "tiny", "device": "tpu9"}, 400, "INVALID_REQUEST"),
    ({"model_name": "tiny", "nodes": ["node7"]}, 404, "NOT_FOUND"),
    ({"model_name": "tiny", "config": {"port": 80}}, 400, "INVALID_REQUEST"),
    ({"model_name": "tiny", "config": {"port": 70000}}, 400, "INVALID_REQUEST"),
    ({"model_name": "tiny", "config": {"framework": "vllm"}}, 409, "RESOURCE_UNAVAILABLE"),  # not installed
    ({"model_name": "tiny", "config": {"framework": "nope"}}, 400, "INVALID_REQUEST"),
]


async def test_bad_deploys_are_refused_in_the_envelope_and_claim_nothing(
    api_rest: Client, key: str, model_on: Callable[..., Path]
) -> None:
    model_on("tiny", "node1")
    host = api_rest("gswarm_host")
    for body, status, code in BAD_DEPLOYS:
        answer = await host.post("/api/v1/services", json=body, headers=_h(key))
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["success"] is False and answer.json()["error"]["code"] == code, body
    assert (await host.get("/api/v1/services", headers=_h(key))).json()["data"]["services"] == []


async def test_a_port_taken_on_the_node_is_a_conflict(
    api_rest: Client, key: str, model_on: Callable[..., Path]
) -> None:
    model_on("tiny", "node1")
    host = api_rest("gswarm_host")
    first = (await host.post("/api/v1/services", json={"model_name": "tiny"}, headers=_h(key))).json()["data"]
    port = first["services"][0]["port"]
    again = await host.post(
        "/api/v1/services", json={"model_name": "tiny", "config": {"port": port}}, headers=_h(key)
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "CONFLICT"


async def test_a_full_node_evicts_the_least_asked_routed_replica_for_a_cold_start(
    api_rest: Client, key: str, model_on: Callable[..., Path]
) -> None:
    for name in ("a", "b", "c"):
        model_on(name, "node1")  # node1 has 2 serving slots in these tests
    host = api_rest("gswarm_host")

    async def predict(name: str) -> dict[str, Any]:
        answer = await host.post(f"/api/v1/models/{name}/predict", json={"inputs": "x"}, headers=_h(key))
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["data"])

    for name in ("a", "a", "a", "b"):
        await predict(name)
    third = await predict("c")
    assert third["cold_start"] is True and third["evicted"].startswith("b-node1-")
    listed = (await host.get("/api/v1/services", headers=_h(key))).json()["data"]["services"]
    assert {s["model_name"] for s in listed if s["status"] == "running"} == {"a", "c"}
    assert (await predict("a"))["cold_start"] is False


async def test_deleting_a_served_model_needs_force_and_force_stops_its_services_first(
    api_rest: Client, key: str, model_on: Callable[..., Path]
) -> None:
    model_on("tiny", "node1")
    host = api_rest("gswarm_host")
    answer = await host.post("/api/v1/services", json={"model_name": "tiny"}, headers=_h(key))
    (service,) = answer.json()["data"]["services"]
    running = await _until(host, key, service["service_id"], "running", "failed")
    assert running["status"] == "running", running
    refused = await host.delete("/api/v1/models/tiny", headers=_h(key))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "CONFLICT"
    forced = await host.delete("/api/v1/models/tiny", params={"force": "true"}, headers=_h(key))
    assert forced.status_code == 204, forced.text
    stopped = await _until(host, key, service["service_id"], "stopped")
    assert stopped["status"] == "stopped"
    assert port_is_free("127.0.0.1", service["port"])
