"""API keys over the admin API, tried from the attacker's side: escalation, other tenants."""

from __future__ import annotations

import httpx

from runtime.services import Services
from tests.support.platform import make_key

ADMIN = frozenset({"security:admin", "tasks:read", "tasks:write"})


def _headers(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


async def test_a_key_minted_by_the_api_works_once_shown_and_revoking_it_stops_it(
    rest: httpx.AsyncClient, services: Services
) -> None:
    admin = make_key(services, "acme", ADMIN)
    created = await rest.post(
        "/v1/auth/keys", json={"scopes": ["tasks:read"], "description": "ci"}, headers=_headers(admin)
    )
    assert created.status_code == 201, created.text
    minted = created.json()
    assert minted["key"].startswith("grey_api_key_acme_") and minted["scopes"] == ["tasks:read"]
    assert (await rest.get("/v1/tasks", headers=_headers(minted["key"]))).status_code == 200

    listed = (await rest.get("/v1/auth/keys", headers=_headers(admin))).json()["keys"]
    assert minted["key_id"] in [k["key_id"] for k in listed]
    assert all("key" not in k and "key_hash" not in k for k in listed)

    revoked = await rest.delete(f"/v1/auth/keys/{minted['key_id']}", headers=_headers(admin))
    assert revoked.status_code == 204
    assert (await rest.get("/v1/tasks", headers=_headers(minted["key"]))).status_code == 401


async def test_a_key_cannot_mint_a_key_with_more_scopes_than_its_own(
    rest: httpx.AsyncClient, services: Services
) -> None:
    admin = make_key(services, "acme", ADMIN)
    for scope in ("platform:admin", "cluster:admin"):
        escalated = await rest.post("/v1/auth/keys", json={"scopes": [scope]}, headers=_headers(admin))
        assert escalated.status_code == 403, escalated.text
        assert escalated.json()["error"]["code"] == "forbidden"


async def test_another_tenants_keys_are_out_of_reach_without_platform_admin(
    rest: httpx.AsyncClient, services: Services
) -> None:
    make_key(services, "globex", ADMIN)
    victim = services.store.keys.list("globex")[0]
    attacker = make_key(services, "acme", ADMIN)
    assert (await rest.get("/v1/auth/keys?tenant_id=globex", headers=_headers(attacker))).status_code == 403
    gone = await rest.delete(f"/v1/auth/keys/{victim.key_id}", headers=_headers(attacker))
    assert gone.status_code == 404
    assert services.store.keys.by_id(victim.key_id) is not None
    assert not services.store.keys.by_id(victim.key_id).revoked  # type: ignore[union-attr]

    operator = make_key(services, "acme", ADMIN | {"platform:admin"})
    listed = await rest.get("/v1/auth/keys?tenant_id=globex", headers=_headers(operator))
    assert [k["key_id"] for k in listed.json()["keys"]] == [victim.key_id]
    assert (
        await rest.delete(f"/v1/auth/keys/{victim.key_id}", headers=_headers(operator))
    ).status_code == 204


async def test_keys_need_security_admin(rest: httpx.AsyncClient, services: Services) -> None:
    reader = make_key(services, "acme", frozenset({"tasks:read", "security:read"}))
    answer = await rest.get("/v1/auth/keys", headers=_headers(reader))
    assert answer.status_code == 403
