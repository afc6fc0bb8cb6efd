"""`getTaskProof` over REST and gRPC: the proof of a task that ran in the (simulated) TEE, the
gateway's verdict on it, the binary proof file; what another tenant and a tamperer get."""

from __future__ import annotations

import base64
import json

from sqlalchemy import update

from runtime.execution.tee.node import TeeNode
from runtime.execution.tee.proof import Proof
from runtime.execution.tee.roots import ROOT_CERT_FILE, TrustedRoots
from runtime.execution.tee.settings import TeeSettings
from runtime.execution.tee.verify import verify_proof
from runtime.services import Services
from runtime.store.schema import tasks
from tests.handlers.grey.test_security import TEE_TASK, platform, tee, tee_settings
from tests.support.platform import make_key, wait_for_task

__all__ = ["platform", "tee", "tee_settings"]  # the fixtures these tests share


async def test_the_proof_of_a_tee_task_is_verified_on_both_transports(
    call, key, services, tee: TeeNode
) -> None:
    task_id = (await call("submitTask", key, **TEE_TASK)).data["task_id"]
    done = await wait_for_task(services, task_id)
    assert done.status == "completed" and done.proof_available
    outcome = await call("getTaskProof", key, task_id=task_id)
    assert outcome.ok, outcome
    proof = outcome.data
    assert (proof["task_id"], proof["platform"], proof["debug"]) == (task_id, "sgx-sim", True)
    assert proof["verified"] is True and proof["verified_at"]
    assert (proof["mrenclave"], proof["node_id"]) == (tee.mrenclave, tee.node_id)
    receipt = proof["receipt"]
    assert receipt["payloadType"] == "application/vnd.in-toto+json"
    statement = json.loads(base64.b64decode(receipt["payload"]))
    assert statement["predicate"]["quote"]["nonce"] == proof["nonce"]
    assert base64.b64decode(proof["quote"])[:2] == b"\x03\x00"  # an SGX DCAP v3 quote
    task = (await call("getTask", key, task_id=task_id)).data
    assert task["tee_executed"] is True and task["proof_available"] is True


async def test_the_binary_proof_verifies_offline(rest, key, services, tee, tee_settings: TeeSettings) -> None:
    headers = {"X-API-Key": key}
    task_id = (await rest.post("/v1/tasks", json=TEE_TASK, headers=headers)).json()["task_id"]
    await wait_for_task(services, task_id)
    answer = await rest.get(f"/v1/tasks/{task_id}/proof", params={"format": "binary"}, headers=headers)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/octet-stream"
    proof = Proof.from_bytes(answer.content)
    roots = TrustedRoots.from_files((tee_settings.directory / ROOT_CERT_FILE,))
    assert verify_proof(proof, roots).quote.platform == "sgx-sim"


async def test_another_tenants_proof_is_not_found(call, key, services: Services, tee) -> None:
    task_id = (await call("submitTask", key, **TEE_TASK)).data["task_id"]
    await wait_for_task(services, task_id)
    other = make_key(services, "intruder")
    assert (await call("getTaskProof", other, task_id=task_id)).code == "task_not_found"
    assert (await call("getTaskProof", key, task_id="task_nope")).code == "task_not_found"


async def test_no_proof_before_completion_nor_for_a_cpu_task(call, key, services, tee) -> None:
    sleeping = {**TEE_TASK, "payload": {"function": "sleep", "data": {"seconds": 5}}}
    running = (await call("submitTask", key, **sleeping)).data["task_id"]
    assert (await call("getTaskProof", key, task_id=running)).code == "result_not_ready"
    await call("cancelTask", key, task_id=running)
    cpu = (await call("submitTask", key, type="stateless", payload={"function": "echo"})).data["task_id"]
    await wait_for_task(services, cpu)
    assert (await call("getTaskProof", key, task_id=cpu)).code == "conflict"


async def test_a_result_tampered_with_in_the_store_is_not_verified(rest, key, services, tee) -> None:
    headers = {"X-API-Key": key}
    task_id = (await rest.post("/v1/tasks", json=TEE_TASK, headers=headers)).json()["task_id"]
    await wait_for_task(services, task_id)
    with services.store.engine.begin() as conn:
        conn.execute(update(tasks).where(tasks.c.task_id == task_id).values(result={"x": 2}))
    proof = (await rest.get(f"/v1/tasks/{task_id}/proof", headers=headers)).json()
    assert proof["verified"] is False and "result" in proof["verification_error"]
