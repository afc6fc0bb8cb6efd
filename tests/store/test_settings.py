from __future__ import annotations

import secrets
import threading

from runtime.store import Store


def test_get_or_create_returns_the_same_value_twice(store: Store) -> None:
    first = store.settings.get_or_create("jwt_secret", lambda: secrets.token_hex(32))
    calls: list[str] = []

    def regenerate() -> str:
        calls.append("x")
        return "other"

    second = store.settings.get_or_create("jwt_secret", regenerate)
    assert second == first
    assert calls == []  # an existing value is not even regenerated
    assert store.settings.get("jwt_secret") == first
    assert store.settings.get("missing") is None


def test_concurrent_get_or_create_agrees_on_one_value(threaded_store: Store) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        results.append(threaded_store.settings.get_or_create("jwt_secret", secrets.token_hex))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert len(set(results)) == 1
