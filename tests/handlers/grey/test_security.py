"""The `security` operations: TEE attestation (simulation mode) and tenant isolation.

A tee pool runs in-process (its node attests itself at start); the gateway verifies against
the simulation root in the test's directory. Both stores; REST, and gRPC where it exists.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from runtime.execution.tee import service
from runtime.execution.tee.node import TeeNode
from runtime.execution.tee.quote import Quote
from runtime.execution.tee.receipts import key_der, key_from_dict
from runtime.execution.tee.roots import ROOT_CERT_FILE, SimulationRoot, TrustedRoots
from runtime.execution.tee.settings import TeeSettings
from runtime.execution.tee.verify import verify_evidence
from runtime.gateway.app import Platform
from runtime.services import Services
from runtime.store import NodeRecord
from runtime.store.coltypes import utc_now
from tests.support.platform import make_key, wait_for_task

TEE_TASK = {"type": "stateless", "payload": {"function": "echo", "data": {"x": 1}}, "tee_required": True}

_SHARED: dict[str, Platform] = {}


@pytest.fixture
def platform(services: Services) -> Platform:
    """Grey's gateway, built once for these modules (building one takes ~1.5 s): only its
    dispatcher's services change, as in tests/execution/conftest.py."""
    cached = _SHARED.get("platform")
    if cached is None:
        cached = _SHARED["platform"] = Platform.build(services)
    for gateway in cached.gateways.values():
        gateway.dispatcher.services = services
    return Platform(services, cached.gateways)


@pytest.fixture
def tee_settings(services: Services, tmp_path: Path) -> TeeSettings:
    """The gateway trusts the simulation root kept in the test's directory."""
    settings = TeeSettings(directory=tmp_path / "tee")
    services.runtime.tee.settings = settings
    return settings


@pytest.fixture
def tee(services: Services, tee_settings: TeeSettings) -> TeeNode:
    """An in-process tee pool (one thread) beside a cpu pool; its node attested."""
    services.start_runtime(worker_threads=1, tee_threads=1)
    (node,) = services.runtime.tee_nodes().values()
    return node


def _trust_another_root(services: Services, tmp_path: Path) -> None:
    other = tmp_path / "other-root"
    SimulationRoot.load_or_create(other)
    services.runtime.tee.settings = TeeSettings(directory=other)


async def test_attestation_status_counts_the_tee_nodes_that_verify(rest, key, services, tee_settings) -> None:
    headers = {"X-API-Key": key}
    empty = (await rest.get("/v1/security/attestation", headers=headers)).json()
    assert (empty["nodes_total"], empty["nodes_attested"], empty["all_valid"]) == (0, 0, False)
    services.start_runtime(worker_threads=1, tee_threads=1)
    status = (await rest.get("/v1/security/attestation", headers=headers)).json()
    assert (status["nodes_total"], status["nodes_attested"], status["all_valid"]) == (1, 1, True)
    assert status["platforms"] == {"sgx-sim": 1} and status["last_verification"]


async def test_a_node_attestation_is_verified_by_the_gateway(rest, key, services, tee, tmp_path) -> None:
    headers = {"X-API-Key": key}
    body = (await rest.get(f"/v1/security/attestation/{tee.node_id}", headers=headers)).json()
    assert (body["valid"], body["platform"], body["debug"]) == (True, "sgx-sim", True)
    assert body["mrenclave"] == tee.mrenclave and body.get("reason") is None
    assert tee.state is not None and tee.state.expires_at - tee.state.verified_at == timedelta(hours=1)
    missing = await rest.get("/v1/security/attestation/grey-worker-nowhere", headers=headers)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    _trust_another_root(services, tmp_path)  # a gateway trusting another root refuses it
    refused = (await rest.get(f"/v1/security/attestation/{tee.node_id}", headers=headers)).json()
    assert not refused["valid"] and "trusted root" in refused["reason"]
    status = (await rest.get("/v1/security/attestation", headers=headers)).json()
    assert (status["nodes_attested"], status["all_valid"]) == (0, False)


async def test_a_fresh_attestation_quotes_the_callers_challenge(
    call, key, services, tee, tee_settings
) -> None:
    outcome = await call("requestAttestation", key, node_id=tee.node_id, challenge="nonce-123")
    assert outcome.ok, outcome
    assert outcome.data["verified"] is True and outcome.data["node_id"] == tee.node_id
    evidence = outcome.data["attestation"]
    assert (evidence["platform"], evidence["debug"]) == ("sgx-sim", True)
    assert evidence["nonce"] == b"nonce-123".hex()
    quote = base64.b64decode(evidence["quote"])
    node_key = evidence["node_key"]
    public = key_der(key_from_dict(node_key))
    assert Quote.unpack(quote).body.report_data[:32] == hashlib.sha256(public + b"nonce-123").digest()
    # Offline: the quote verifies up to the root, and the node key signed it.
    roots = TrustedRoots.from_files((tee_settings.directory / ROOT_CERT_FILE,))
    assert verify_evidence(quote, b"nonce-123", node_key, roots).mrenclave == tee.mrenclave
    signer = serialization.load_der_public_key(public)
    assert isinstance(signer, ec.EllipticCurvePublicKey)
    signer.verify(base64.b64decode(evidence["signature"]), quote, ec.ECDSA(hashes.SHA256()))
    assert (await call("requestAttestation", key, node_id="grey-worker-nowhere")).code == "not_found"


async def test_a_node_the_gateway_refuses_takes_no_tee_work(rest, key, services, tee, tmp_path) -> None:
    headers = {"X-API-Key": key}
    assert (await rest.post("/v1/tasks", json=TEE_TASK, headers=headers)).status_code == 201
    _trust_another_root(services, tmp_path)
    answer = await rest.post("/v1/security/attestation", json={"node_id": tee.node_id}, headers=headers)
    body = answer.json()
    assert answer.status_code == 200 and body["verified"] is False and "trusted root" in body["reason"]
    node = services.store.nodes.get(tee.node_id)
    assert node is not None and not node.tee_enabled
    services.runtime.forget_nodes()
    refused = await rest.post("/v1/tasks", json=TEE_TASK, headers=headers)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "unschedulable")
    assert tee.beat() is False and not tee.ready()  # the node follows at its next heartbeat


async def test_a_node_in_another_process_answers_through_the_store(rest, key, services, tee_settings) -> None:
    """A `grey worker --pool tee` node: the gateway writes the challenge and rings; the node answers."""
    services.start_runtime(worker_threads=0)
    node = TeeNode.simulated("grey-worker-elsewhere-tee", tee_settings, services.store)
    now = utc_now()
    services.store.nodes.upsert(
        NodeRecord(node.node_id, "worker", "active", "elsewhere:0", now, pool="tee", last_heartbeat=now)
    )
    node.attest()

    def doorbell(task_id: str) -> None:
        if task_id == service.DOORBELL_PREFIX + node.node_id:
            threading.Thread(target=service.answer_challenges, args=(node, services.store)).start()

    services.runtime.bus.on_cancel(doorbell)
    headers = {"X-API-Key": key}
    answer = await rest.post(
        "/v1/security/attestation", json={"node_id": node.node_id, "challenge": "c"}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["verified"] is True and answer.json()["attestation"]["nonce"] == b"c".hex()
    assert services.store.tee.pending_challenges(node.node_id) == []


async def test_a_node_that_does_not_answer_is_503(rest, key, services, tee_settings, monkeypatch) -> None:
    monkeypatch.setattr(service, "ANSWER_SECONDS", 0.3)
    now = utc_now()
    services.store.nodes.upsert(
        NodeRecord("grey-worker-silent-tee", "worker", "active", "x:0", now, pool="tee", last_heartbeat=now)
    )
    answer = await rest.post(
        "/v1/security/attestation", json={"node_id": "grey-worker-silent-tee"}, headers={"X-API-Key": key}
    )
    assert (answer.status_code, answer.json()["error"]["code"]) == (503, "service_unavailable")


async def test_isolation_reports_what_is_enforced_and_counts_refused_reads(rest, key, services) -> None:
    mine = {"X-API-Key": key}
    theirs = {"X-API-Key": make_key(services, "intruder")}
    submitted = await rest.post("/v1/tasks", json={"type": "stateless", "payload": {}}, headers=mine)
    task_id = submitted.json()["task_id"]
    for method, path in [
        ("GET", f"/v1/tasks/{task_id}"),
        ("GET", f"/v1/tasks/{task_id}/proof"),
        ("DELETE", f"/v1/tasks/{task_id}"),
        ("GET", "/v1/tasks/task_00000000-0000-4000-8000-000000000000"),  # nobody's: not counted
    ]:
        refused = await rest.request(method, path, headers=theirs)
        assert (refused.status_code, refused.json()["error"]["code"]) == (404, "task_not_found")
    status = (await rest.get("/v1/security/isolation", headers=mine)).json()
    assert status["tenant_id"] == "acme" and status["violations"] == 3
    assert status["isolation_level"] == "logical" and status["last_checked"]
    features = status["features"]
    assert features["tenant_scoped_data"] and features["scoped_credentials"]
    assert not features["tee_hardware"] and not features["memory_encryption"]
    assert not features["tee_available"] and not features["tee_enforcement"]
    assert (await rest.get("/v1/security/isolation", headers=theirs)).json()["violations"] == 0


async def test_a_tee_task_waits_for_nothing_once_a_node_is_attested(rest, key, services, tee) -> None:
    headers = {"X-API-Key": key}
    task_id = (await rest.post("/v1/tasks", json=TEE_TASK, headers=headers)).json()["task_id"]
    done = await wait_for_task(services, task_id)
    assert (done.status, done.executed_on, done.tee_executed) == ("completed", tee.node_id, True)
    status = (await rest.get("/v1/security/isolation", headers=headers)).json()
    assert status["features"]["tee_available"] is True
