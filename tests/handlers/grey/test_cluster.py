"""The `cluster` operations: health, resource usage and the node list, over REST and gRPC."""

from __future__ import annotations

from runtime.execution import host
from runtime.execution.workers import PoolOptions
from runtime.gateway.app import Platform
from runtime.services import Services


async def test_cluster_health_reports_queue_depth_from_the_store(call, key) -> None:
    for _ in range(3):
        await call("submitTask", key, type="stateless", payload={"function": "echo"})
    health = await call("getClusterHealth", key)
    assert health.ok
    assert int(health.data["queue"]["depth"]) == 3  # int64: a string in ProtoJSON
    assert health.data["version"]


async def test_resource_usage_shows_the_tenants_quotas(call, key) -> None:
    usage = await call("getResourceUsage", key)
    assert usage.data["tenant_id"] == "acme"
    assert usage.data["quotas"]["cpu_cores"]["limit"] == 100


async def test_list_nodes_answers_the_registered_nodes_with_their_fields(
    call, key, services: Services, platform: Platform
) -> None:
    assert (await call("listNodes", key)).data.get("nodes", []) == []  # nothing started yet
    platform.start_runtime(worker_threads=0)  # the gateway registers itself
    pool = services.runtime.start_pool(PoolOptions(threads=2))
    nodes = {node["node_id"]: node for node in (await call("listNodes", key)).data["nodes"]}
    assert set(nodes) == {services.node_id, pool.node_id}
    gateway, worker = nodes[services.node_id], nodes[pool.node_id]
    assert (gateway["role"], gateway["status"]) == ("gateway", "active")
    assert (worker["role"], worker["pool"], worker["status"]) == ("worker", "cpu", "active")
    assert worker["resources"]["cpu_cores"] == host.cpu_cores()
    assert worker["resources"]["memory_gb"] == host.memory_gb()
    assert worker["started_at"] and worker["last_heartbeat"] and worker["address"]

    workers = (await call("listNodes", key, role="worker")).data["nodes"]
    assert [node["node_id"] for node in workers] == [pool.node_id]
    services.store.nodes.set_status(pool.node_id, "quarantined")
    quarantined = (await call("listNodes", key, status="quarantined")).data["nodes"]
    assert [(node["node_id"], node["status"]) for node in quarantined] == [(pool.node_id, "quarantined")]
    assert (await call("listNodes", key, role="gateway", status="quarantined")).data.get("nodes", []) == []
