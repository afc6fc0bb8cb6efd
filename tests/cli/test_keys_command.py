"""`grey keys create` mints a key that the API then accepts with exactly its scopes."""

from __future__ import annotations

from pathlib import Path

import httpx
from typer.testing import CliRunner

from runtime.cli import app
from runtime.gateway.app import Platform
from runtime.services import Services
from runtime.settings import Settings
from runtime.store import Store


async def test_keys_create_mints_a_working_key_with_its_scopes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'grey.db'}"
    result = CliRunner().invoke(
        app, ["keys", "create", "--tenant", "acme", "--scopes", "tasks:read", "--database-url", url]
    )
    assert result.exit_code == 0, result.output
    key = result.output.strip()
    assert key.startswith("grey_api_key_acme_")
    services = Services.open(Settings(database_url=url))
    try:
        transport = httpx.ASGITransport(app=Platform.build(services).rest)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            headers = {"X-API-Key": key}
            assert (await client.get("/v1/tasks", headers=headers)).status_code == 200
            denied = await client.post(
                "/v1/tasks", json={"type": "stateless", "payload": {}}, headers=headers
            )
            assert denied.status_code == 403
    finally:
        services.close()


def test_keys_create_rejects_unknown_scopes_and_bad_tenants(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'grey.db'}"
    runner = CliRunner()
    bad_scope = runner.invoke(
        app, ["keys", "create", "--tenant", "acme", "--scopes", "tasks:fly", "--database-url", url]
    )
    assert bad_scope.exit_code != 0 and "tasks:fly" in bad_scope.output
    bad_tenant = runner.invoke(
        app, ["keys", "create", "--tenant", "a_b", "--scopes", "tasks:read", "--database-url", url]
    )
    assert bad_tenant.exit_code != 0


def test_keys_list_shows_no_secret_and_revoke_stops_the_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'grey.db'}"
    runner = CliRunner()
    created = runner.invoke(
        app, ["keys", "create", "--tenant", "acme", "--scopes", "tasks:read", "--database-url", url]
    )
    key = created.output.strip()
    listed = runner.invoke(app, ["keys", "list", "--database-url", url], terminal_width=200)
    assert listed.exit_code == 0, listed.output
    assert "acme" in listed.output and "active" in listed.output and key not in listed.output
    with Store.open(url) as store:
        key_id = store.keys.list("acme")[0].key_id
    revoked = runner.invoke(app, ["keys", "revoke", key_id, "--database-url", url])
    assert revoked.exit_code == 0, revoked.output
    with Store.open(url) as store:
        assert store.keys.list("acme")[0].revoked
    assert runner.invoke(app, ["keys", "revoke", "key_missing", "--database-url", url]).exit_code == 1
