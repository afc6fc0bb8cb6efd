"""The `auth` operation: exchanging a workspace's API key for a bearer token, over REST and gRPC."""

from __future__ import annotations

from tests.support.platform import make_key

SUBMIT = {"type": "stateless", "payload": {"function": "echo"}}


def _token(data: dict) -> str:
    return data.get("access_token") or data.get("token") or ""


async def test_token_exchange_gives_a_bearer_token_with_the_keys_scopes(call, key, services) -> None:
    outcome = await call("createToken", None, workspace_id="acme", workspace_secret=key)
    token = _token(outcome.data)
    assert token and token.count(".") == 2
    assert (await call("submitTask", token, **SUBMIT)).ok
    reader = make_key(services, "acme", frozenset({"tasks:read"}))
    exchanged = await call("createToken", None, workspace_id="acme", workspace_secret=reader)
    reader_token = _token(exchanged.data)
    assert (await call("submitTask", reader_token, **SUBMIT)).code == "forbidden"


async def test_token_exchange_with_wrong_workspace_is_unauthorized(call, key) -> None:
    assert (await call("createToken", None, workspace_id="globex", workspace_secret=key)).code == (
        "unauthorized"
    )
