"""A bearer JWT's verification is kept for the credential cache's time, and never widens what
the token may do: past its `exp`, with its key revoked, or altered, it is refused as before."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from runtime.services.auth import Authenticator, InvalidCredentials
from runtime.store import Store

CACHE_SECONDS = 60.0  # long: every refusal below must come from the token, not the cache's end


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'grey.db'}")


def test_a_verified_token_is_not_decoded_again_within_the_cache_time(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = Authenticator(store, token_ttl_seconds=900, cache_seconds=CACHE_SECONDS)
    key = auth.create_key("acme", frozenset({"tasks:read"}))
    token, _ = auth.issue_token("acme", key)
    assert auth.authenticate(token).tenant_id == "acme"
    decodes: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        decodes.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    for _ in range(5):
        principal = auth.cached(token)
        assert principal is not None and principal.scopes == frozenset({"tasks:read"})
    assert decodes == []


def test_a_cached_token_past_its_exp_is_refused(store: Store) -> None:
    auth = Authenticator(store, token_ttl_seconds=1, cache_seconds=CACHE_SECONDS)
    key = auth.create_key("acme", frozenset({"tasks:read"}))
    token, expires_at = auth.issue_token("acme", key)
    assert auth.authenticate(token).tenant_id == "acme"
    time.sleep(max(0.0, expires_at.timestamp() - time.time()) + 0.05)  # PyJWT: expired once exp <= now
    assert auth.cached(token) is None
    with pytest.raises(InvalidCredentials):
        auth.authenticate(token)


def test_a_cached_token_of_a_revoked_key_stops_within_the_cache_bound(store: Store) -> None:
    auth = Authenticator(store, token_ttl_seconds=900, cache_seconds=0.2)
    key = auth.create_key("acme", frozenset({"tasks:read"}))
    token, _ = auth.issue_token("acme", key)
    assert auth.authenticate(token).tenant_id == "acme"
    auth.revoke("acme", store.keys.list("acme")[0].key_id)
    time.sleep(0.3)
    assert auth.cached(token) is None
    with pytest.raises(InvalidCredentials):
        auth.authenticate(token)


def test_an_altered_token_is_never_taken_from_the_cache(store: Store) -> None:
    auth = Authenticator(store, token_ttl_seconds=900, cache_seconds=CACHE_SECONDS)
    key = auth.create_key("acme", frozenset({"tasks:read"}))
    token, _ = auth.issue_token("acme", key)
    assert auth.authenticate(token).tenant_id == "acme"
    head, claims, signature = token.split(".")
    forged = jwt.encode(
        {**jwt.decode(token, options={"verify_signature": False}), "scope": "platform:admin"},
        "not-the-secret-of-this-workspace-at-all",
        algorithm="HS256",
    )
    for altered in (
        forged,
        f"{head}.{claims}.{signature[:-2]}AA",
        f"{head}.{forged.split('.')[1]}.{signature}",
    ):
        assert auth.cached(altered) is None
        with pytest.raises(InvalidCredentials):
            auth.authenticate(altered)
