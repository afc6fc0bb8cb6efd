"""Nodes, health and metrics of the host API: the in-process node1 with its devices."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from runtime.services import Services
from tests.handlers.gswarm_support import Make, downloaded, headers
from tests.support.envelope import data


@pytest.fixture
def host(api_rest: Callable[[str], httpx.AsyncClient], gswarm: Services) -> httpx.AsyncClient:
    return api_rest("gswarm_host")


async def test_nodes_list_node1_with_its_devices_and_an_emulated_gpu(
    host: httpx.AsyncClient, gswarm: Services
) -> None:
    [node] = data(await host.get("/api/v1/nodes", headers=headers(gswarm)))["nodes"]
    assert (node["node_id"], node["status"]) == ("node1", "online")
    assert node["capabilities"]["gpus"] == ["gpu0"] and node["capabilities"]["emulated_gpus"] is True
    assert node["capabilities"]["storage"]["dram"] == 8 * 1024 * 1024


async def test_health_is_healthy_while_node1_runs(host: httpx.AsyncClient, gswarm: Services) -> None:
    health = data(await host.get("/api/v1/health"))
    assert (health["status"], health["nodes_online"], health["nodes_total"]) == ("healthy", 1, 1)
    assert health["checks"] == {"store": "ok", "node:node1": "ok"}


async def test_metrics_count_the_tenants_models_locations_and_tasks(
    host: httpx.AsyncClient, api_rest: Callable[[str], httpx.AsyncClient], gswarm: Services, served: Make
) -> None:
    hdrs = headers(gswarm)
    await downloaded(api_rest("gswarm_client"), gswarm, hdrs, "tiny", served())
    metrics = data(await host.get("/api/v1/metrics", headers=hdrs))
    assert (metrics["models"], metrics["locations"], metrics["nodes_online"]) == (1, 1, 1)
    assert metrics["tasks"]["completed"] == 1
    assert metrics["storage"]["node1:gpu0"]["emulated"] is True
    assert data(await host.get("/api/v1/metrics", headers=headers(gswarm, "globex")))["models"] == 0
