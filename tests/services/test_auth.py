"""Credentials from the attacker's side: revoked keys and their tokens, guessing, scopes."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from sqlalchemy import delete

from runtime.config import RateLimits
from runtime.services.auth import Authenticator, InvalidCredentials
from runtime.services.ratelimit import RateLimited, RateLimiter
from runtime.store import Store
from runtime.store.schema import api_keys

CACHE_SECONDS = 0.2


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'grey.db'}")


def _auth(store: Store, failures: int | None = 5) -> Authenticator:
    limiter = RateLimiter(RateLimits(auth_failures=failures, window_seconds=60))
    return Authenticator(store, token_ttl_seconds=900, cache_seconds=CACHE_SECONDS, limiter=limiter)


def _key_id(store: Store, tenant: str) -> str:
    return store.keys.list(tenant)[0].key_id


def test_a_revoked_key_and_every_token_minted_from_it_stop_within_the_cache_bound(store: Store) -> None:
    auth = _auth(store)
    key = auth.create_key("acme", frozenset({"tasks:read"}))
    token, _ = auth.issue_token("acme", key)
    assert auth.authenticate(key).tenant_id == "acme"
    assert auth.authenticate(token).tenant_id == "acme"

    store.keys.revoke(_key_id(store, "acme"))
    time.sleep(CACHE_SECONDS * 1.5)

    with pytest.raises(InvalidCredentials):
        auth.authenticate(key)
    with pytest.raises(InvalidCredentials):
        auth.authenticate(token)
    assert auth.cached(token) is None


def test_a_token_of_a_deleted_key_stops_working(store: Store) -> None:
    auth = _auth(store)
    key = auth.create_key("acme", frozenset({"tasks:read"}))
    token, _ = auth.issue_token("acme", key)
    with store.engine.begin() as conn:
        conn.execute(delete(api_keys))
    time.sleep(CACHE_SECONDS * 1.5)
    with pytest.raises(InvalidCredentials):
        auth.authenticate(token)


def test_guessing_from_one_address_is_refused_after_the_limit_even_for_a_right_key(store: Store) -> None:
    auth = _auth(store, failures=5)
    key = auth.create_key("acme", frozenset({"tasks:read"}))
    for n in range(5):
        with pytest.raises(InvalidCredentials):
            auth.authenticate(f"grey_api_key_acme_{n:048x}", client="10.9.9.9")
    with pytest.raises(RateLimited) as limited:
        auth.authenticate(key, client="10.9.9.9")  # a guess that happens to be right
    assert limited.value.retry_after >= 1
    # Other addresses are not held back, and a known-good credential in the cache still works.
    assert auth.authenticate(key, client="10.1.1.1").tenant_id == "acme"


def test_failed_token_exchanges_count_against_the_address(store: Store) -> None:
    auth = _auth(store, failures=3)
    key = auth.create_key("acme", frozenset({"tasks:read"}))
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            auth.issue_token("acme", "grey_api_key_acme_wrong", client="10.9.9.9")
    with pytest.raises(RateLimited):
        auth.issue_token("acme", key, client="10.9.9.9")
    assert auth.issue_token("acme", key, client="10.1.1.1")[0]


def test_a_token_of_another_secret_or_without_key_id_is_refused(store: Store) -> None:
    auth = _auth(store)
    claims = {"sub": "acme", "scope": "tasks:read", "aud": "grey", "exp": time.time() + 60}
    forged = jwt.encode({**claims, "kid": "key_1"}, "another-secret-of-32-bytes-or-more!")
    with pytest.raises(InvalidCredentials):
        auth.authenticate(forged)
    secret = store.settings.get_or_create("jwt_secret", lambda: "unused")
    unbound = jwt.encode(claims, secret)  # the right signature, but no key it came from
    with pytest.raises(InvalidCredentials):
        auth.authenticate(unbound)
