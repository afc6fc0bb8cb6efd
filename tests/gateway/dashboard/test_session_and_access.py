"""The dashboard's sign-in, cookie, headers, CSRF and scope checks, and tenant isolation."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from runtime.gateway.dashboard.app import CSP, STATIC
from runtime.services import Services
from runtime.services.auth import SCOPES
from runtime.store import NewTask
from tests.gateway.dashboard.conftest import CSRF, SignIn, mounted
from tests.support.cloudai import seed_worker
from tests.support.platform import make_key


def _task(services: Services, tenant: str, **fields: object) -> str:
    return services.store.tasks.insert(
        NewTask(tenant_id=tenant, type="stateless", payload={"function": "echo"}, **fields)  # type: ignore[arg-type]
    ).task_id


async def test_a_good_key_signs_in_with_an_httponly_strict_cookie_that_holds_no_key(
    client: httpx.AsyncClient, services: Services
) -> None:
    key = make_key(services, "acme")
    answer = await client.post("/dashboard/session", json={"api_key": key})
    assert answer.status_code == 200, answer.text
    assert answer.json()["tenant_id"] == "acme"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("grey_dashboard=")
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/dashboard" in flags
    assert "secure" not in flags  # a plain-HTTP listener; TLS listeners get Secure
    assert key not in cookie and key[-48:] not in cookie
    me = (await client.get("/dashboard/session")).json()
    assert (me["signed_in"], me["tenant_id"]) == (True, "acme")


async def test_behind_tls_the_cookie_is_secure(services: Services, tmp_path: Path) -> None:
    transport = httpx.ASGITransport(app=mounted(services, tmp_path, secure=True))
    async with httpx.AsyncClient(transport=transport, base_url="https://grey.test") as client:
        answer = await client.post("/dashboard/session", json={"api_key": make_key(services, "acme")})
    assert "secure" in [part.strip().lower() for part in answer.headers["set-cookie"].split(";")]


async def test_a_token_from_auth_token_signs_in_too(client: httpx.AsyncClient, services: Services) -> None:
    key = make_key(services, "acme")
    token, _ = services.auth.issue_token("acme", key)
    answer = await client.post("/dashboard/session", json={"api_key": token})
    assert answer.status_code == 200, answer.text
    assert answer.json()["tenant_id"] == "acme"


async def test_a_bad_key_is_refused_without_a_cookie(client: httpx.AsyncClient, services: Services) -> None:
    make_key(services, "acme")
    answer = await client.post("/dashboard/session", json={"api_key": "grey_api_key_acme_" + "0" * 48})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    assert "set-cookie" not in answer.headers
    assert (await client.get("/dashboard/api/tasks")).status_code == 401
    assert (await client.post("/dashboard/session", content=b"api_key=x")).status_code == 415


async def test_a_key_in_a_url_is_never_taken(client: httpx.AsyncClient, services: Services) -> None:
    key = make_key(services, "acme")
    params = {"api_key": key, "key": key, "token": key}
    assert (await client.get("/dashboard/session", params=params)).json()["signed_in"] is False
    assert (await client.get("/dashboard/api/tasks", params=params)).status_code == 401
    assert (await client.get("/dashboard/api/tasks", headers={"X-API-Key": key})).status_code == 401


def test_no_url_the_page_builds_carries_a_key() -> None:
    """The page sends the key only in the sign-in POST's JSON body; its WebSocket URL and
    every fetch path carry no query parameter naming a credential, and the key field has no
    `name`, so even a form submitted without the script puts it in no URL."""
    script = (STATIC / "app.js").read_text()
    page = (STATIC / "index.html").read_text()
    assert re.findall(r"new WebSocket\(([^)]*)\)", script) == ["`${scheme}://${location.host}${BASE}/live`"]
    assert not re.search(r"[?&](api_key|key|token)=", script + page)
    assert script.count("api_key") == 1 and "body: { api_key: key }" in script
    field = re.search(r"<input id=\"api-key\"[^>]*>", page)
    assert field is not None and "name=" not in field.group(0) and 'type="password"' in field.group(0)
    assert "localStorage" not in script and "sessionStorage" not in script


async def test_every_answer_carries_the_csp_and_no_inline_code(
    client: httpx.AsyncClient, sign_in: SignIn, services: Services
) -> None:
    signed = await sign_in(make_key(services, "acme"))
    answers = [
        await client.get("/dashboard/"),
        await client.get("/dashboard/static/app.js"),
        await client.get("/dashboard/api/tasks"),  # 401 JSON
        await signed.get("/dashboard/api/tasks"),
        await signed.get("/dashboard/api/cluster"),
    ]
    for answer in answers:
        assert answer.headers["content-security-policy"] == CSP, answer.request.url
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
    for answer in answers[2:]:
        assert answer.headers["cache-control"] == "no-store"
    page = answers[0].text
    assert "<script>" not in page and "style=" not in page and "<style" not in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing from another origin
    for path in Path(STATIC).iterdir():
        assert "http://" not in path.read_text().replace("http://www.w3.org/2000/svg", ""), path


async def test_tenant_a_cannot_read_or_cancel_tenant_b_task(sign_in: SignIn, services: Services) -> None:
    theirs = _task(services, "beta")
    attacker = await sign_in(make_key(services, "acme"))
    assert (await attacker.get(f"/dashboard/api/tasks/{theirs}")).status_code == 404
    listed = (await attacker.get("/dashboard/api/tasks")).json()
    assert [task["task_id"] for task in listed["tasks"]] == []
    cancel = await attacker.post(f"/dashboard/api/tasks/{theirs}/cancel", headers=CSRF)
    assert cancel.status_code == 404
    task = services.store.tasks.get("beta", theirs)
    assert task is not None and task.status == "pending"
    owner = await sign_in(make_key(services, "beta"))
    assert (await owner.get(f"/dashboard/api/tasks/{theirs}")).json()["task"]["status"] == "pending"


async def test_cancel_needs_the_csrf_header(sign_in: SignIn, services: Services) -> None:
    task_id = _task(services, "acme")
    signed = await sign_in(make_key(services, "acme"))
    refused = await signed.post(f"/dashboard/api/tasks/{task_id}/cancel")
    assert refused.status_code == 403
    assert services.store.tasks.get("acme", task_id).status == "pending"  # type: ignore[union-attr]
    done = await signed.post(f"/dashboard/api/tasks/{task_id}/cancel", headers=CSRF)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "cancelled"
    again = await signed.post(f"/dashboard/api/tasks/{task_id}/cancel", headers=CSRF)
    assert again.status_code == 409 and again.json()["error"]["code"] == "task_not_cancellable"
    detail = (await signed.get(f"/dashboard/api/tasks/{task_id}")).json()
    assert detail["task"]["status"] == "cancelled" and detail["cancellable"] is False
    assert [event["status"] for event in detail["events"]][-1] == "cancelled"


async def test_cancel_needs_tasks_write(sign_in: SignIn, services: Services) -> None:
    task_id = _task(services, "acme")
    reader = await sign_in(make_key(services, "acme", frozenset({"tasks:read"})))
    assert (await reader.post(f"/dashboard/api/tasks/{task_id}/cancel", headers=CSRF)).status_code == 403


async def test_node_actions_need_cluster_admin(sign_in: SignIn, services: Services) -> None:
    seed_worker(services, "grey-worker-7")
    reader = await sign_in(make_key(services, "acme", SCOPES - {"cluster:admin", "platform:admin"}))
    view = (await reader.get("/dashboard/api/cluster")).json()
    assert view["can_admin"] is False
    assert [w["worker_id"] for w in view["workers"]] == ["grey-worker-7"]
    refused = await reader.post("/dashboard/api/nodes/grey-worker-7/quarantine", headers=CSRF)
    assert refused.status_code == 403
    assert services.store.nodes.get("grey-worker-7").status == "active"  # type: ignore[union-attr]
    admin = await sign_in(make_key(services, "acme"))
    assert (await admin.post("/dashboard/api/nodes/grey-worker-7/quarantine")).status_code == 403  # no CSRF
    done = await admin.post("/dashboard/api/nodes/grey-worker-7/quarantine", headers=CSRF)
    assert done.status_code == 200, done.text
    assert services.store.nodes.get("grey-worker-7").status == "quarantined"  # type: ignore[union-attr]
    worker = (await admin.get("/dashboard/api/cluster")).json()["workers"][0]
    assert (worker["state"], worker["alive"]) == ("quarantined", True)
    assert (await admin.post("/dashboard/api/nodes/nowhere/drain", headers=CSRF)).status_code == 404


async def test_a_revoked_key_ends_its_session(sign_in: SignIn, services: Services) -> None:
    key, record = services.auth.mint("acme", SCOPES)
    signed = await sign_in(key)
    assert (await signed.get("/dashboard/api/tasks")).status_code == 200
    services.store.keys.revoke(record.key_id)
    answer = await signed.get("/dashboard/api/tasks")
    assert answer.status_code == 401
    assert "revoked" in answer.json()["error"]["message"]


async def test_sign_out_needs_the_header_and_clears_the_cookie(sign_in: SignIn, services: Services) -> None:
    signed = await sign_in(make_key(services, "acme"))
    assert (await signed.delete("/dashboard/session")).status_code == 403
    out = await signed.delete("/dashboard/session", headers=CSRF)
    assert out.status_code == 200
    assert "grey_dashboard=" in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    assert (await signed.get("/dashboard/api/tasks")).status_code == 401


async def test_a_forged_session_is_refused(client: httpx.AsyncClient) -> None:
    client.cookies.set("grey_dashboard", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhY21lIn0.", path="/dashboard")
    assert (await client.get("/dashboard/api/tasks")).status_code == 401
