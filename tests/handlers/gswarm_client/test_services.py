"""gswarm client API: a node's services started, probed and stopped through the node's API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from runtime.execution.serving.host import port_is_free
from runtime.services import Services
from tests.support.platform import make_key

Client = Callable[[str], httpx.AsyncClient]


def _h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


async def _status_until(
    client: httpx.AsyncClient, key: str, service_id: str, *statuses: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        answer = await client.get(f"/api/v1/services/{service_id}/status", headers=_h(key))
        assert answer.status_code == 200, answer.text
        data = answer.json()["data"]
        if data["status"] in statuses:
            return dict(data)
        assert time.monotonic() < deadline, data
        await asyncio.sleep(0.05)


async def test_a_started_service_reports_healthy_with_its_load_time_then_stops(
    api_rest: Client, key: str, model_on: Callable[..., Path]
) -> None:
    model_on("tiny", "node1")
    node = api_rest("gswarm_client")
    answer = await node.post(
        "/api/v1/services", json={"model_name": "tiny", "device": "disk"}, headers=_h(key)
    )
    assert answer.status_code == 201, answer.text
    service = answer.json()["data"]
    assert service["node"] == "node1" and service["status"] == "starting"
    status = await _status_until(node, key, service["service_id"], "running", "failed")
    assert status["status"] == "running" and status["healthy"] is True
    assert status["load_time"] is not None and status["load_time"] > 0 and status["pid"]
    stopped = await node.delete(f"/api/v1/services/{service['service_id']}", headers=_h(key))
    assert stopped.status_code == 204
    after = await _status_until(node, key, service["service_id"], "stopped")
    assert after["healthy"] is False
    assert port_is_free("127.0.0.1", service["port"])


async def test_a_requested_port_is_used_and_a_privileged_one_refused(
    api_rest: Client, key: str, model_on: Callable[..., Path]
) -> None:
    model_on("tiny", "node1")
    node = api_rest("gswarm_client")
    chosen = await node.post("/api/v1/services", json={"model_name": "tiny", "port": 18277}, headers=_h(key))
    assert chosen.status_code == 201 and chosen.json()["data"]["port"] == 18277
    assert chosen.json()["data"]["service_id"] == "tiny-node1-18277"
    for port in (80, 1023, 65536):
        refused = await node.post(
            "/api/v1/services", json={"model_name": "tiny", "port": port}, headers=_h(key)
        )
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "INVALID_REQUEST"
    taken = await node.post("/api/v1/services", json={"model_name": "tiny", "port": 18277}, headers=_h(key))
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "CONFLICT"


async def test_another_node_or_tenant_cannot_reach_a_service_through_this_node(
    api_rest: Client, key: str, services: Services, model_on: Callable[..., Path]
) -> None:
    model_on("tiny", "node2")
    host, node = api_rest("gswarm_host"), api_rest("gswarm_client")
    deployed = await host.post(
        "/api/v1/services", json={"model_name": "tiny", "nodes": ["node2"]}, headers=_h(key)
    )
    service_id = deployed.json()["data"]["services"][0]["service_id"]
    elsewhere = await node.get(f"/api/v1/services/{service_id}/status", headers=_h(key))
    assert elsewhere.status_code == 404 and elsewhere.json()["error"]["code"] == "NOT_FOUND"
    model_on("tiny", "node1")
    mine = (await node.post("/api/v1/services", json={"model_name": "tiny"}, headers=_h(key))).json()["data"]
    intruder = make_key(services, "intruder")
    for answer in (
        await node.get(f"/api/v1/services/{mine['service_id']}/status", headers=_h(intruder)),
        await node.delete(f"/api/v1/services/{mine['service_id']}", headers=_h(intruder)),
    ):
        assert answer.status_code == 404
    assert (await _status_until(node, key, mine["service_id"], "running", "failed"))["status"] == "running"
