from __future__ import annotations

import pytest

from runtime.store import DEFAULT_QUOTAS, Store


def test_a_tenant_without_a_row_gets_the_seed_defaults(store: Store) -> None:
    quotas = store.quotas.get("tenant-a")
    assert quotas.limits() == {
        "cpu_cores": 100,
        "memory_gb": 256,
        "max_concurrent_tasks": 10000,
        "max_queue_depth": 50000,
        "submit_rate_per_second": 1000,
    }
    assert dict(DEFAULT_QUOTAS) == quotas.limits()
    assert (quotas.tenant_id, quotas.updated_at, quotas.updated_reason) == ("tenant-a", None, None)


def test_update_changes_only_the_given_limits_and_records_why(store: Store) -> None:
    first = store.quotas.update("tenant-a", {"cpu_cores": 200}, "Capacity increase for Q1")
    assert first.limits() == dict(DEFAULT_QUOTAS) | {"cpu_cores": 200}
    assert first.updated_reason == "Capacity increase for Q1"
    assert first.updated_at is not None
    assert store.quotas.get("tenant-a") == first

    second = store.quotas.update("tenant-a", {"memory_gb": 512}, "More memory")
    assert second.limits() == dict(DEFAULT_QUOTAS) | {"cpu_cores": 200, "memory_gb": 512}
    assert second.updated_reason == "More memory"
    assert store.quotas.get("tenant-a") == second


def test_quotas_of_one_tenant_leave_the_others_at_defaults(store: Store) -> None:
    store.quotas.update("tenant-a", {"max_queue_depth": 5}, "small")
    assert store.quotas.get("tenant-b").limits() == dict(DEFAULT_QUOTAS)


def test_update_refuses_unknown_quota_names(store: Store) -> None:
    with pytest.raises(ValueError, match="gpus"):
        store.quotas.update("tenant-a", {"gpus": 4}, "no such quota")
