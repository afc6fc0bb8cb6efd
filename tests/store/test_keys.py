from __future__ import annotations

import hashlib

import pytest
from sqlalchemy.exc import IntegrityError

from runtime.store import Store


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_a_key_is_found_by_the_hash_of_the_full_key(store: Store) -> None:
    assert store.keys.count() == 0
    added = store.keys.add("tenant123", _hash("grey_api_key_tenant123_abc"), ["tasks:read"], "ci")
    assert store.keys.by_hash(_hash("grey_api_key_tenant123_abc")) == added
    assert store.keys.by_hash(_hash("grey_api_key_tenant123_xyz")) is None
    assert store.keys.count() == 1
    assert store.keys.list("tenant123") == [added]
    assert store.keys.list("other") == []


def test_a_revoked_key_is_still_found_but_marked(store: Store) -> None:
    added = store.keys.add("tenant123", _hash("k"), ["tasks:write"])
    assert store.keys.revoke(added.key_id)
    found = store.keys.by_hash(_hash("k"))
    assert found is not None
    assert found.revoked
    assert not store.keys.revoke("key_missing")


def test_the_same_key_cannot_be_stored_twice(store: Store) -> None:
    store.keys.add("tenant123", _hash("k"), [])
    with pytest.raises(IntegrityError):
        store.keys.add("tenant-b", _hash("k"), [])
