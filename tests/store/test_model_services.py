"""The services table: a tenant's rows only, one live service per node port, restarts settled."""

from __future__ import annotations

import pytest

from runtime.store import Store
from runtime.store.model_services import ModelServiceRepository, PortTaken, ServiceExists, ServiceRecord


def _record(tenant: str = "acme", port: int = 8100, node: str = "node1", **changes: object) -> ServiceRecord:
    values: dict[str, object] = {
        "tenant_id": tenant,
        "service_id": f"tiny-{node}-{port}",
        "model_name": "tiny",
        "node_id": node,
        "device": "disk",
        "port": port,
        "url": f"http://127.0.0.1:{port}",
        "status": "starting",
        "holder": "boot-1",
        "config": {"replicas": 1},
    }
    values.update(changes)
    return ServiceRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def repo(store: Store) -> ModelServiceRepository:
    return ModelServiceRepository.of(store.engine)


def test_a_claimed_service_reads_back_for_its_tenant_only(repo: ModelServiceRepository) -> None:
    repo.claim(_record())
    got = repo.get("acme", "tiny-node1-8100")
    assert got is not None and got.status == "starting" and got.config == {"replicas": 1}
    assert repo.get("other", "tiny-node1-8100") is None
    assert repo.for_tenant("other") == []


def test_a_live_port_of_a_node_cannot_be_claimed_twice_by_any_tenant(repo: ModelServiceRepository) -> None:
    repo.claim(_record())
    with pytest.raises(ServiceExists):
        repo.claim(_record())
    with pytest.raises(PortTaken):
        repo.claim(_record(tenant="other", service_id="other-node1-8100"))
    repo.claim(_record(node="node2"))  # the same port on another node is another port


def test_a_stopped_service_frees_its_port_and_its_id_can_be_reused(repo: ModelServiceRepository) -> None:
    repo.claim(_record())
    assert repo.ports_in_use("node1") == {8100}
    assert repo.update("acme", "tiny-node1-8100", status="stopped")
    assert repo.ports_in_use("node1") == set()
    repo.claim(_record(config={"replicas": 2}))
    again = repo.get("acme", "tiny-node1-8100")
    assert again is not None and again.status == "starting" and again.config == {"replicas": 2}


def test_a_conditional_update_skips_rows_in_other_states(repo: ModelServiceRepository) -> None:
    repo.claim(_record())
    assert not repo.update("acme", "tiny-node1-8100", only_from=("running",), status="stopping")
    assert repo.update("acme", "tiny-node1-8100", only_from=("starting",), status="running", pid=42)
    got = repo.get("acme", "tiny-node1-8100")
    assert got is not None and (got.status, got.pid) == ("running", 42)


def test_live_rows_of_another_boot_are_failed_and_this_boots_are_kept(repo: ModelServiceRepository) -> None:
    repo.claim(_record(port=8100, holder="old-boot"))
    repo.claim(_record(port=8101, holder="new-boot"))
    failed = repo.fail_other_boots("node1", "new-boot", "restarted")
    assert [r.service_id for r in failed] == ["tiny-node1-8100"]
    old, new = repo.get("acme", "tiny-node1-8100"), repo.get("acme", "tiny-node1-8101")
    assert old is not None and old.status == "failed" and old.error == "restarted"
    assert new is not None and new.status == "starting"


def test_services_are_listed_newest_first_and_filtered_by_model(repo: ModelServiceRepository) -> None:
    repo.claim(_record(port=8100))
    repo.claim(_record(port=8101, model_name="other", service_id="other-node1-8101"))
    repo.claim(_record(port=8102))
    assert [r.port for r in repo.for_tenant("acme")] == [8102, 8101, 8100]
    assert [r.port for r in repo.for_tenant("acme", model_name="tiny")] == [8102, 8100]
