"""The tee pool on a gateway: tasks run in the simulated TEE and get proofs; a node whose
attestation fails or expires takes no TEE work (submit answers 409 meanwhile)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runtime.execution.tee.attester import SimulatedSgxAttester
from runtime.execution.tee.measurement import manifest, mrenclave_of
from runtime.execution.tee.proof import Proof
from runtime.execution.tee.roots import SimulationRoot, TrustedRoots
from runtime.execution.tee.settings import TeeSettings
from runtime.execution.tee.verify import verify_proof
from runtime.store import Store
from tests.conftest import empty_store
from tests.execution.conftest import Gateway

TEE_TASK: dict[str, Any] = {
    "type": "stateless",
    "payload": {"function": "echo", "data": {"x": 1}},
    "tee_required": True,
}


class SwitchableAttester:
    """The simulated attester, made to fail on demand (a platform that lost its attester)."""

    platform, debug = "sgx-sim", True

    def __init__(self, inner: SimulatedSgxAttester) -> None:
        self.inner, self.failing = inner, False

    def quote(self, report_data: bytes) -> bytes:
        if self.failing:
            raise RuntimeError("attester unavailable")
        return self.inner.quote(report_data)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'grey.db'}"
    url = request.getfixturevalue("postgres_url")
    with Store.open(url) as store:
        empty_store(store)
    return str(url.render_as_string(hide_password=False))


async def _tee_gateway(make_gateway: Callable[..., Any], database_url: str, settings: TeeSettings) -> Gateway:
    gateway: Gateway = await make_gateway(database_url=database_url)
    gateway.services.runtime.tee.settings = settings
    return gateway


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_tee_task_runs_in_the_simulated_tee_and_its_proof_verifies_offline(
    make_gateway, database_url: str, tmp_path: Path
) -> None:
    settings = TeeSettings(directory=tmp_path / "tee")
    gateway = await _tee_gateway(make_gateway, database_url, settings)
    await gateway.submit(expect=409, **TEE_TASK)  # no tee node yet: unschedulable
    pool = gateway.pool(threads=1, pool="tee", tee=settings)
    cpu = gateway.pool(threads=1)
    task_id = (await gateway.submit(**TEE_TASK))["task_id"]
    (done,) = await gateway.wait(task_id)
    assert (done.status, done.pool, done.executed_on) == ("completed", "tee", pool.node_id)
    assert done.tee_executed and done.proof_available
    response = await gateway.client.get(f"/v1/tasks/{task_id}/proof", headers=gateway.headers)
    body = response.json()
    assert response.status_code == 200, body
    assert (body["platform"], body["debug"], body["verified"]) == ("sgx-sim", True, True)
    assert body["receipt"]["payloadType"] == "application/vnd.in-toto+json"
    binary = await gateway.client.get(
        f"/v1/tasks/{task_id}/proof", params={"format": "binary"}, headers=gateway.headers
    )
    assert binary.headers["content-type"] == "application/octet-stream"
    proof = Proof.from_bytes(binary.content)
    roots = TrustedRoots.from_files((settings.directory / "sim-root.pem",))
    assert verify_proof(proof, roots).predicate["node"]["node_id"] == pool.node_id
    assert proof.result == done.result
    # A task of the cpu pool has no proof.
    cpu_task = (await gateway.submit(payload={"function": "echo"}))["task_id"]
    await gateway.wait(cpu_task)
    answer = await gateway.client.get(f"/v1/tasks/{cpu_task}/proof", headers=gateway.headers)
    assert (answer.status_code, answer.json()["error"]["code"]) == (409, "conflict")
    assert not gateway.record(cpu_task).tee_executed and cpu.node_id


async def test_a_node_attested_by_an_untrusted_root_takes_no_tee_work(make_gateway, tmp_path: Path) -> None:
    settings = TeeSettings(directory=tmp_path / "tee")
    SimulationRoot.load_or_create(settings.directory)  # the root verifiers trust
    impostor = SimulatedSgxAttester(SimulationRoot.create(), "x", mrenclave_of(manifest()))
    gateway = await _tee_gateway(make_gateway, f"sqlite:///{tmp_path / 'grey.db'}", settings)
    pool = gateway.pool(threads=1, pool="tee", tee=settings, attester=impostor)
    assert not pool.consuming
    record = gateway.store.tee.attestation(pool.node_id)
    assert record is not None and not record.valid and "trusted root" in (record.reason or "")
    answer = await gateway.client.post("/v1/tasks", json=TEE_TASK, headers=gateway.headers)
    assert answer.status_code == 409 and "none with a valid attestation" in answer.json()["error"]["message"]


async def test_an_expired_attestation_stops_tee_work_until_renewed(make_gateway, tmp_path: Path) -> None:
    settings = TeeSettings(directory=tmp_path / "tee", attestation_ttl_seconds=1.0)
    root = SimulationRoot.load_or_create(settings.directory)
    gateway = await _tee_gateway(make_gateway, f"sqlite:///{tmp_path / 'grey.db'}", settings)
    node_id = "grey-worker-test-tee-expiry"
    attester = SwitchableAttester(SimulatedSgxAttester(root, node_id, mrenclave_of(manifest())))
    pool = gateway.pool(threads=1, pool="tee", tee=settings, attester=attester, node_id=node_id)
    assert pool.consuming
    attester.failing = True  # renewals fail from now: the attestation runs out within 1 s
    await _until(lambda: not pool.consuming)
    assert pool.tee is not None and not pool.tee.ready()
    node = gateway.store.nodes.get(node_id)
    assert node is not None and not node.tee_enabled
    gateway.services.runtime.forget_nodes()  # the gateway caches live nodes for a second
    await gateway.submit(expect=409, **TEE_TASK)
    attester.failing = False  # renewed at the next heartbeat
    await _until(lambda: pool.consuming)
    gateway.services.runtime.forget_nodes()
    task_id = (await gateway.submit(**TEE_TASK))["task_id"]
    (done,) = await gateway.wait(task_id)
    assert done.status == "completed" and done.proof_available
