"""TEE fixtures: a simulation root, a node on it (no worker pool), and a task record."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runtime.execution.tee.attester import SimulatedSgxAttester
from runtime.execution.tee.measurement import manifest, mrenclave_of
from runtime.execution.tee.node import TeeNode
from runtime.execution.tee.proof import Proof
from runtime.execution.tee.roots import SimulationRoot, TrustedRoots
from runtime.store import Store, TaskRecord
from runtime.store.coltypes import utc_now

MANIFEST = manifest()
MRENCLAVE = mrenclave_of(MANIFEST)


@pytest.fixture(scope="session")
def root() -> SimulationRoot:
    return SimulationRoot.create()


@pytest.fixture
def roots(root: SimulationRoot) -> TrustedRoots:
    return TrustedRoots.of(root)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'grey.db'}") as opened:
        yield opened


def make_node(
    root: SimulationRoot, store: Store, node_id: str = "grey-worker-test-tee", ttl: float = 60.0
) -> TeeNode:
    attester = SimulatedSgxAttester(root, node_id, MRENCLAVE)
    return TeeNode(node_id, attester, MANIFEST, TrustedRoots.of(root), store, ttl)


@pytest.fixture
def node(root: SimulationRoot, store: Store) -> TeeNode:
    return make_node(root, store)


def task_record(**changes: Any) -> TaskRecord:
    now = utc_now()
    task = TaskRecord(
        task_id="task_00000000-0000-4000-8000-000000000001",
        tenant_id="acme",
        type="stateless",
        status="running",
        priority="normal",
        progress=0,
        payload={"function": "echo", "data": {"greeting": "hello"}},
        result=None,
        error=None,
        labels={},
        timeout_seconds=60,
        idempotency_key=None,
        state_key=None,
        dependencies=[],
        resources={},
        tee_required=True,
        tee_executed=False,
        proof_available=False,
        executed_on="grey-worker-test-tee",
        device_emulated=False,
        retry_count=0,
        attempt=1,
        pool="tee",
        created_at=now,
        started_at=now,
        completed_at=None,
        cancelled_at=None,
        duration_ms=None,
        queue_time_ms=None,
        execution_time_ms=None,
        cancel_reason=None,
        updated_at=now,
    )
    return replace(task, **changes)


RESULT = {"greeting": "hello", "count": 42, "items": [1.5, "two", None, True]}


def sealed_proof(node: TeeNode, result: Any = RESULT) -> Proof:
    """A task's proof as the gateway serves it (record + result + manifest)."""
    task = task_record()
    record = node.seal(task, result, task.started_at or utc_now(), utc_now())
    return Proof.of(record, result, MANIFEST)
