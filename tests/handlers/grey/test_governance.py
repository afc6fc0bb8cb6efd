"""The `governance` operations: quotas and rate limits (REST only: they have no gRPC method)."""

from __future__ import annotations

from tests.support.platform import make_key


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


async def test_cluster_admin_of_one_tenant_cannot_change_another_tenants_quotas(rest, services) -> None:
    attacker = make_key(services, "acme", frozenset({"cluster:admin", "cluster:read"}))
    response = await rest.patch(
        "/v1/governance/quotas",
        json={"tenant_id": "globex", "max_concurrent_tasks": 1, "reason": "x"},
        headers={"X-API-Key": attacker},
    )
    assert response.status_code == 403
    assert response.json()["error"]["details"]["required_scopes"] == ["platform:admin"]
    assert services.store.quotas.get("globex").max_concurrent_tasks == 10000

    operator = make_key(services, "acme", frozenset({"cluster:admin", "platform:admin"}))
    allowed = await rest.patch(
        "/v1/governance/quotas",
        json={"tenant_id": "globex", "max_concurrent_tasks": 1, "reason": "x"},
        headers={"X-API-Key": operator},
    )
    assert allowed.status_code == 200 and allowed.json()["tenant_id"] == "globex"
