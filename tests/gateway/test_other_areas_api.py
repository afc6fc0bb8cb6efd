"""Cluster, governance, webhooks, system and the operations still answering 501."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import make_key


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


async def test_list_nodes_answers_a_list(call, key) -> None:
    assert (await call("listNodes", key)).ok


async def test_quotas_default_then_patch_changes_only_given_fields(rest, key) -> None:
    headers = {"X-API-Key": key}
    got = (await rest.get("/v1/governance/quotas", headers=headers)).json()
    assert got == {
        "tenant_id": "acme",
        "quotas": {
            "cpu_cores": 100,
            "memory_gb": 256,
            "max_concurrent_tasks": 10000,
            "max_queue_depth": 50000,
            "submit_rate_per_second": 1000,
        },
    }
    patched = await rest.patch(
        "/v1/governance/quotas", json={"cpu_cores": 200, "reason": "Q1"}, headers=headers
    )
    assert patched.status_code == 200
    assert patched.json()["quotas"]["cpu_cores"] == 200
    assert patched.json()["quotas"]["memory_gb"] == 256


async def test_patching_quotas_needs_cluster_admin(rest, services) -> None:
    reader = make_key(services, "acme", frozenset({"cluster:read"}))
    response = await rest.patch(
        "/v1/governance/quotas", json={"cpu_cores": 1, "reason": "x"}, headers={"X-API-Key": reader}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


async def test_rate_limits_count_the_tenants_requests(rest, key) -> None:
    headers = {"X-API-Key": key}
    await rest.post("/v1/tasks", json={"type": "stateless", "payload": {}}, headers=headers)
    status = (await rest.get("/v1/governance/rate-limits", headers=headers)).json()
    assert status["submit"]["limit"] == 1000
    assert status["submit"]["remaining"] == 999
    assert status["api"]["window_seconds"] == 60


async def test_webhooks_create_list_delete_and_hide_the_secret(rest, key, services) -> None:
    headers = {"X-API-Key": key}
    body = {"url": "https://example.test/hook", "events": ["task.completed"], "secret": "s3cret-value"}
    created = await rest.post("/v1/webhooks", json=body, headers=headers)
    assert created.status_code == 201
    webhook = created.json()
    assert "secret" not in webhook
    listed = (await rest.get("/v1/webhooks", headers=headers)).json()["webhooks"]
    assert [w["webhook_id"] for w in listed] == [webhook["webhook_id"]]
    other = make_key(services, "globex")
    assert (
        await rest.delete(f"/v1/webhooks/{webhook['webhook_id']}", headers={"X-API-Key": other})
    ).status_code == 404
    deleted = await rest.delete(f"/v1/webhooks/{webhook['webhook_id']}", headers=headers)
    assert deleted.status_code == 204
    assert (await rest.get("/v1/webhooks", headers=headers)).json()["webhooks"] == []


async def test_health_and_metrics_need_no_credentials(rest) -> None:
    health = await rest.get("/health")
    assert health.status_code == 200 and health.json()["healthy"] is True
    metrics = await rest.get("/metrics")
    assert metrics.status_code == 200
    assert "tasks_submitted_total" in metrics.text
    assert 'grey_requests_total{code="ok",operation="getHealth",transport="rest"} 1.0' in metrics.text
    assert metrics.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/tasks/task_x/proof"),
        ("GET", "/v1/security/attestation"),
        ("GET", "/v1/security/attestation/node-1"),
        ("GET", "/v1/security/isolation"),
    ],
)
async def test_operations_not_built_yet_answer_501_not_implemented(rest, key, method, path) -> None:
    response = await rest.request(method, path, headers={"X-API-Key": key})
    assert response.status_code == 501
    assert response.json()["error"]["code"] == "not_implemented"


async def test_grpc_operations_not_built_yet_are_unimplemented_with_the_code(call, key) -> None:
    outcome = await call("requestAttestation", key, node_id="node-1")
    assert outcome.code == "not_implemented"
