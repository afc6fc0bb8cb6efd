"""TEE rows: node attestations, measurement manifests, task proofs, attestation challenges.

Execution's TEE code (runtime/execution/tee) makes and verifies what these rows hold; the
store only keeps it. A task's proof is written in the transaction that completes it
(`save_proof` runs as the transition's `also`).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, select, update

from runtime.store.coltypes import utc_now
from runtime.store.schema import nodes, task_proofs, tasks, tee_attestations, tee_challenges, tee_measurements
from runtime.store.upsert import dialect_insert


@dataclass(frozen=True, slots=True)
class AttestationRecord:
    node_id: str
    platform: str
    debug: bool
    mrenclave: str
    mrsigner: str
    quote: bytes
    nonce: bytes
    node_key: dict[str, Any]
    valid: bool
    reason: str | None
    verified_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ProofRecord:
    task_id: str
    node_id: str
    platform: str
    debug: bool
    mrenclave: str
    mrsigner: str
    quote: bytes
    nonce: bytes
    node_key: dict[str, Any]
    receipt: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ChallengeRecord:
    challenge_id: str
    node_id: str
    nonce: bytes
    requested_at: datetime
    answered_at: datetime | None = None
    quote: bytes | None = None
    signature: bytes | None = None
    node_key: dict[str, Any] | None = None
    error: str | None = None


def _attestation(row: Row[Any]) -> AttestationRecord:
    values = dict(row._mapping)
    values["quote"], values["nonce"] = bytes(values["quote"]), bytes(values["nonce"])
    return AttestationRecord(**values)


def _challenge(row: Row[Any]) -> ChallengeRecord:
    values = dict(row._mapping)
    for name in ("nonce", "quote", "signature"):
        if values[name] is not None:
            values[name] = bytes(values[name])
    return ChallengeRecord(**values)


class TeeRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- attestations ---------------------------------------------------------------------

    def save_attestation(self, record: AttestationRecord) -> None:
        """The node's latest attestation; its `tee_enabled` follows the verdict."""
        row = asdict(record)
        with self._engine.begin() as conn:
            stmt = dialect_insert(conn, tee_attestations).values(row)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[tee_attestations.c.node_id],
                    set_={k: v for k, v in row.items() if k != "node_id"},
                )
            )
            self._enable(conn, record.node_id, record.valid)

    def set_enabled(self, node_id: str, enabled: bool) -> None:
        """`nodes.tee_enabled` (written only when it changes)."""
        with self._engine.begin() as conn:
            self._enable(conn, node_id, enabled)

    @staticmethod
    def _enable(conn: Connection, node_id: str, enabled: bool) -> None:
        conn.execute(
            update(nodes)
            .where(nodes.c.node_id == node_id, nodes.c.tee_enabled != enabled)
            .values(tee_enabled=enabled)
        )

    def invalidate(self, node_id: str, reason: str) -> None:
        """A verifier refused the node's evidence: it takes no TEE work until it attests again."""
        with self._engine.begin() as conn:
            conn.execute(
                update(tee_attestations)
                .where(tee_attestations.c.node_id == node_id)
                .values(valid=False, reason=reason)
            )
            self._enable(conn, node_id, False)

    def attestation(self, node_id: str) -> AttestationRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(tee_attestations).where(tee_attestations.c.node_id == node_id)).first()
        return None if row is None else _attestation(row)

    def attestations(self) -> list[AttestationRecord]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(tee_attestations).order_by(tee_attestations.c.node_id))
            return [_attestation(row) for row in rows]

    # -- measurements and proofs ------------------------------------------------------------

    def save_measurement(self, mrenclave: str, manifest: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            stmt = dialect_insert(conn, tee_measurements).values(mrenclave=mrenclave, manifest=manifest)
            conn.execute(stmt.on_conflict_do_nothing(index_elements=[tee_measurements.c.mrenclave]))

    def measurement(self, mrenclave: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            stmt = select(tee_measurements.c.manifest).where(tee_measurements.c.mrenclave == mrenclave)
            manifest: dict[str, Any] | None = conn.execute(stmt).scalar_one_or_none()
            return manifest

    @staticmethod
    def save_proof(conn: Connection, record: ProofRecord) -> None:
        """Inside the transaction completing the task."""
        conn.execute(task_proofs.insert().values(asdict(record)))

    def proof(self, tenant_id: str, task_id: str) -> ProofRecord | None:
        """The tenant's task's proof (None for another tenant's task)."""
        stmt = (
            select(task_proofs)
            .join(tasks, tasks.c.task_id == task_proofs.c.task_id)
            .where(task_proofs.c.task_id == task_id, tasks.c.tenant_id == tenant_id)
        )
        with self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        values = dict(row._mapping)
        values["quote"], values["nonce"] = bytes(values["quote"]), bytes(values["nonce"])
        return ProofRecord(**values)

    # -- challenges (fresh attestations of nodes in other processes) -------------------------

    def ask(self, node_id: str, nonce: bytes) -> str:
        challenge_id = f"ch_{uuid.uuid4().hex}"
        with self._engine.begin() as conn:
            conn.execute(
                tee_challenges.insert().values(
                    challenge_id=challenge_id, node_id=node_id, nonce=nonce, requested_at=utc_now()
                )
            )
        return challenge_id

    def pending_challenges(self, node_id: str) -> list[ChallengeRecord]:
        stmt = select(tee_challenges).where(
            tee_challenges.c.node_id == node_id, tee_challenges.c.answered_at.is_(None)
        )
        with self._engine.connect() as conn:
            return [_challenge(row) for row in conn.execute(stmt)]

    def answer(
        self,
        challenge_id: str,
        *,
        quote: bytes | None = None,
        signature: bytes | None = None,
        node_key: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        values = {"answered_at": utc_now(), "quote": quote, "signature": signature, "node_key": node_key}
        with self._engine.begin() as conn:
            conn.execute(
                update(tee_challenges)
                .where(tee_challenges.c.challenge_id == challenge_id)
                .values(**values, error=error)
            )

    def challenge(self, challenge_id: str) -> ChallengeRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(tee_challenges).where(tee_challenges.c.challenge_id == challenge_id)
            ).first()
        return None if row is None else _challenge(row)

    def forget(self, challenge_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(tee_challenges).where(tee_challenges.c.challenge_id == challenge_id))
