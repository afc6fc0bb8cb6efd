"""A node's serving host: replicas start, answer, stop (freeing the port); ports are checked."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import httpx
import pytest

from runtime.execution.serving.errors import (
    FrameworkUnavailable,
    InvalidServingRequest,
    PortConflict,
    ReplicaFailed,
)
from runtime.execution.serving.host import Launch, ServingHost, port_is_free
from runtime.execution.serving.settings import ServingSettings
from runtime.store.model_services import ModelServiceRepository


def _launch(checkpoint: Path, **changes: object) -> Launch:
    values: dict[str, object] = {
        "tenant_id": "acme",
        "model_name": "tiny",
        "device": "disk",
        "source": str(checkpoint),
    }
    values.update(changes)
    return Launch(**values)  # type: ignore[arg-type]


def test_a_started_replica_is_running_and_answers_on_its_port(host: ServingHost, checkpoint: Path) -> None:
    record = host.start(_launch(checkpoint))
    assert record.status == "running"
    assert record.service_id == f"tiny-node1-{record.port}"
    assert 18100 <= record.port <= 18199
    stored = host.repo.get("acme", record.service_id)
    assert stored is not None and stored.status == "running" and stored.pid and stored.load_time is not None
    assert httpx.get(f"{record.url}/health").json()["service_id"] == record.service_id


def test_stop_ends_the_process_and_frees_the_port(host: ServingHost, checkpoint: Path) -> None:
    record = host.start(_launch(checkpoint))
    assert not port_is_free("127.0.0.1", record.port)
    host.stop("acme", record.service_id)
    assert port_is_free("127.0.0.1", record.port)
    stored = host.repo.get("acme", record.service_id)
    assert stored is not None and stored.status == "stopped"
    assert record.port not in host.repo.ports_in_use("node1")


def test_a_port_another_program_holds_is_a_conflict(host: ServingHost, checkpoint: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 18150))
        holder.listen()
        with pytest.raises(PortConflict):
            host.start(_launch(checkpoint, port=18150))


def test_a_port_a_live_service_holds_is_a_conflict_even_for_another_tenant(
    host: ServingHost, checkpoint: Path
) -> None:
    first = host.start(_launch(checkpoint, port=18151))
    with pytest.raises(PortConflict):
        host.start(_launch(checkpoint, tenant_id="other", port=first.port))


@pytest.mark.parametrize("port", [0, 22, 80, 1023, 65536, -1])
def test_privileged_and_out_of_range_ports_are_refused(
    host: ServingHost, checkpoint: Path, port: int
) -> None:
    with pytest.raises(InvalidServingRequest):
        host.start(_launch(checkpoint, port=port))


def test_replicas_take_distinct_free_ports(host: ServingHost, checkpoint: Path) -> None:
    one = host.start(_launch(checkpoint))
    two = host.start(_launch(checkpoint))
    assert one.port != two.port


def test_vllm_without_the_package_is_resource_unavailable_and_unknown_frameworks_invalid(
    host: ServingHost, checkpoint: Path
) -> None:
    with pytest.raises(FrameworkUnavailable) as missing:
        host.start(_launch(checkpoint, framework="vllm"))
    assert missing.value.code == "resource_unavailable"
    with pytest.raises(InvalidServingRequest):
        host.start(_launch(checkpoint, framework="tensorflow-serving"))


def test_a_replica_that_cannot_load_is_failed_with_the_reason(host: ServingHost, tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ReplicaFailed):
        host.start(_launch(bad))
    (record,) = host.repo.for_tenant("acme")
    assert record.status == "failed"
    assert record.error and "exited" in record.error


def test_a_restarted_node_marks_the_services_of_its_earlier_boot_failed(
    services_repo: ModelServiceRepository, serving_settings: ServingSettings, checkpoint: Path
) -> None:
    before = ServingHost("node1", services_repo, uuid.uuid4().hex, serving_settings)
    record = before.start(_launch(checkpoint))
    try:
        after = ServingHost("node1", services_repo, uuid.uuid4().hex, serving_settings)
        failed = after.reconcile()
        assert [r.service_id for r in failed] == [record.service_id]
        stored = services_repo.get("acme", record.service_id)
        assert stored is not None and stored.status == "failed" and "restarted" in (stored.error or "")
    finally:
        before.close()
