"""Who may call CloudAI: keys by default, `containers:run` to submit, and the operator's
anonymous tenant, tried from the attacker's side."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from runtime.config import ClusterConfig, ConfigError, load_cluster_config
from runtime.gateway.app import Gateway
from runtime.gateway.contracts import CLOUDAI, GREY, ORCHESTRATOR
from runtime.gateway.dispatch import Dispatcher
from runtime.services import Services
from runtime.settings import Settings
from tests.handlers.cloudai.conftest import SUBMIT, UNLIMITED, headers_for, seed_task, seed_worker
from tests.handlers.cloudai.test_tasks import assert_error

EVERY_CALL = [
    ("POST", "/api/tasks"),
    ("GET", "/api/tasks"),
    ("GET", "/api/tasks/task_x"),
    ("GET", "/api/tasks/task_x/logs"),
    ("POST", "/api/tasks/task_x/cancel"),
    ("GET", "/api/workers"),
    ("GET", "/api/workers/worker-1"),
    ("GET", "/api/cluster/status"),
]


async def test_every_operation_needs_a_credential_by_default(cloudai: httpx.AsyncClient) -> None:
    for method, path in EVERY_CALL:
        response = await cloudai.request(method, path, json=SUBMIT if method == "POST" else None)
        assert_error(response, 401, "UNAUTHORIZED")
        bad = await cloudai.request(method, path, headers={"X-API-Key": "grey_api_key_acme_wrong"})
        assert_error(bad, 401, "UNAUTHORIZED")


async def test_submitting_needs_the_containers_scope(cloudai: httpx.AsyncClient, services: Services) -> None:
    seed_worker(services)
    tasks_only = headers_for(services, "acme", frozenset({"tasks:read", "tasks:write"}))
    error = assert_error(await cloudai.post("/api/tasks", json=SUBMIT, headers=tasks_only), 403, "FORBIDDEN")
    assert "containers:run" in error["message"]
    assert services.store.tasks.list("acme").total == 0
    runner = headers_for(services, "acme", frozenset({"tasks:write", "containers:run"}))
    assert (await cloudai.post("/api/tasks", json=SUBMIT, headers=runner)).status_code == 200
    reader = headers_for(services, "acme", frozenset({"tasks:read"}))
    assert_error(await cloudai.get("/api/workers", headers=reader), 403, "FORBIDDEN")


@pytest.fixture
def anonymous_services(tmp_path: Path) -> Iterator[Services]:
    """CloudAI served to a trusted network: calls without credentials act as tenant `acme`."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'grey.db'}",
        credential_cache_seconds=0.0,
        anonymous_tenants={"cloudai": "acme"},
    )
    services = Services.open(settings, UNLIMITED)
    yield services
    services.close()


@pytest.fixture
async def anonymous(anonymous_services: Services) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """REST clients of CloudAI and Grey on those services."""
    clients = {}
    for contract in (CLOUDAI, GREY):
        app = Gateway.build(anonymous_services, contract).rest
        clients[contract.name] = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        )
    yield clients
    for client in clients.values():
        await client.aclose()


async def test_anonymous_calls_act_as_the_named_tenant(
    anonymous: dict[str, httpx.AsyncClient], anonymous_services: Services
) -> None:
    cloudai = anonymous["cloudai"]
    seed_worker(anonymous_services)
    submitted = await cloudai.post("/api/tasks", json=SUBMIT)
    assert submitted.status_code == 200, submitted.text
    task_id = submitted.json()["task_id"]
    stored = anonymous_services.store.tasks.find("acme", task_id)
    assert stored is not None
    listed = (await cloudai.get("/api/tasks")).json()
    assert [t["task_id"] for t in listed["tasks"]] == [task_id]
    assert (await cloudai.get("/api/workers")).status_code == 200
    assert (await cloudai.post(f"/api/tasks/{task_id}/cancel")).status_code == 200


async def test_anonymous_calls_cannot_see_another_tenants_tasks(
    anonymous: dict[str, httpx.AsyncClient], anonymous_services: Services
) -> None:
    cloudai = anonymous["cloudai"]
    theirs = seed_task(anonymous_services, tenant="globex", user_id="user-123")
    listed = (await cloudai.get("/api/tasks", params={"user_id": "user-123"})).json()
    assert listed["total"] == 0
    assert_error(await cloudai.get(f"/api/tasks/{theirs.task_id}"), 404, "TASK_NOT_FOUND")
    assert_error(await cloudai.post(f"/api/tasks/{theirs.task_id}/cancel"), 404, "TASK_NOT_FOUND")
    kept = anonymous_services.store.tasks.find("globex", theirs.task_id)
    assert kept is not None and kept.status == "pending"
    status = (await cloudai.get("/api/cluster/status")).json()
    assert status["total_tasks"] == 0


async def test_a_credential_is_still_checked_in_anonymous_mode(
    anonymous: dict[str, httpx.AsyncClient], anonymous_services: Services
) -> None:
    cloudai = anonymous["cloudai"]
    assert_error(
        await cloudai.get("/api/tasks", headers={"X-API-Key": "grey_api_key_acme_wrong"}), 401, "UNAUTHORIZED"
    )
    assert_error(
        await cloudai.get("/api/tasks", headers={"Authorization": "Bearer not-a-token"}), 401, "UNAUTHORIZED"
    )
    theirs = seed_task(anonymous_services, tenant="globex")
    globex = headers_for(anonymous_services, "globex")
    seen = (await cloudai.get("/api/tasks", headers=globex)).json()
    assert [t["task_id"] for t in seen["tasks"]] == [theirs.task_id]  # a key acts as its own tenant
    reader = headers_for(anonymous_services, "globex", frozenset({"tasks:read"}))
    assert_error(await cloudai.post("/api/tasks", json=SUBMIT, headers=reader), 403, "FORBIDDEN")


async def test_the_option_does_not_open_the_other_apis(anonymous: dict[str, httpx.AsyncClient]) -> None:
    grey = anonymous["grey"]
    assert_error(await grey.get("/v1/tasks"), 401, "unauthorized")
    assert_error(await grey.post("/v1/tasks", json={"type": "stateless", "payload": {}}), 401, "unauthorized")


def test_an_anonymous_tenant_for_an_api_that_allows_none_is_refused(anonymous_services: Services) -> None:
    settings = Settings(
        database_url=anonymous_services.settings.database_url,
        anonymous_tenants={"grey": "acme", "orchestrator": "acme"},
    )
    anonymous_services.settings = settings
    for contract in (GREY, ORCHESTRATOR):
        with pytest.raises(ValueError, match="never takes calls without credentials"):
            Dispatcher(anonymous_services, contract)
    assert Dispatcher(anonymous_services, CLOUDAI).anonymous_tenant is None


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREY_CLOUDAI_ANONYMOUS_TENANT", "acme")
    assert Settings.from_env().anonymous_tenants == {"cloudai": "acme"}
    monkeypatch.setenv("GREY_CLOUDAI_ANONYMOUS_TENANT", "not a tenant!")
    with pytest.raises(ValueError, match="GREY_CLOUDAI_ANONYMOUS_TENANT"):
        Settings.from_env()
    monkeypatch.delenv("GREY_CLOUDAI_ANONYMOUS_TENANT")
    assert Settings.from_env().anonymous_tenants == {}


def test_the_cluster_config_can_name_the_anonymous_tenant(tmp_path: Path) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text("version: 1\nanonymous_tenants:\n  cloudai: acme\n  grey: acme\n")
    database_url = f"sqlite:///{tmp_path / 'grey.db'}"
    services = Services.open(Settings(database_url=database_url), UNLIMITED, load_cluster_config(config))
    try:
        assert Dispatcher(services, CLOUDAI).anonymous_tenant == "acme"
        with pytest.raises(ValueError, match="never takes calls without credentials"):
            Dispatcher(services, GREY)
        services.settings = Settings(database_url=database_url, anonymous_tenants={"cloudai": "globex"})
        assert Dispatcher(services, CLOUDAI).anonymous_tenant == "globex"  # the environment wins
    finally:
        services.close()


def test_the_cluster_configs_anonymous_tenant_must_be_a_tenant_id(tmp_path: Path) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text("version: 1\nanonymous_tenants:\n  cloudai: 'not a tenant!'\n")
    with pytest.raises(ConfigError, match="anonymous_tenants"):
        load_cluster_config(config)
    assert ClusterConfig.default().anonymous_tenants == {}
