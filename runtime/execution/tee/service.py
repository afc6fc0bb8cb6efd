"""What the gateway asks of the TEE: verdicts on stored evidence, fresh attestations.

A fresh attestation of a node in this process is asked of it directly; of a node in
another process (`grey worker --pool tee`), through the store: the gateway writes a
challenge, rings the node's doorbell on the event bus (the channel workers hear cancel
requests on), and waits for the node to write its answer (nodes also look at each
heartbeat).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from runtime.execution.tee.node import Evidence, TeeNode
from runtime.execution.tee.proof import Proof
from runtime.execution.tee.roots import TrustedRoots
from runtime.execution.tee.settings import TeeSettings
from runtime.execution.tee.verify import (
    ProofInvalid,
    QuoteFacts,
    verify_evidence,
    verify_proof,
    verify_signature,
)
from runtime.store import AttestationRecord, ProofRecord, Store
from runtime.store.coltypes import utc_now

logger = logging.getLogger("grey.tee")

#: Doorbell id (on the cancel channel) telling a TEE node a challenge waits for it.
DOORBELL_PREFIX = "tee-challenge:"
ANSWER_SECONDS = 5.0


class NodeDidNotAnswer(Exception):
    """The node did not answer the challenge in time (or could not make a quote)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    valid: bool
    reason: str | None
    at: datetime
    facts: QuoteFacts | None = None


class TeeService:
    """The gateway's side: `settings` name the trusted roots, read at each verification."""

    def __init__(self, settings: TeeSettings, store: Store, local: Callable[[], dict[str, TeeNode]]) -> None:
        self.settings, self.store, self._local = settings, store, local

    def roots(self) -> TrustedRoots:
        return TrustedRoots.from_files(self.settings.root_files())

    def proof(self, record: ProofRecord, result: Any) -> Proof:
        """The proof file of a stored proof and its task's result."""
        return Proof.of(record, result, self.store.tee.measurement(record.mrenclave) or {})

    def check_proof(self, proof: Proof) -> Verdict:
        now = utc_now()
        try:
            facts = verify_proof(proof, self.roots(), now)
        except ProofInvalid as error:
            return Verdict(False, str(error), now)
        return Verdict(True, None, now, facts.quote)

    def check_evidence(
        self, quote: bytes, nonce: bytes, key: dict[str, Any], signature: bytes | None = None
    ) -> Verdict:
        """A quote binding `key` and `nonce`, up to a trusted root; and, given a
        `signature`, the node key's signature of the quote."""
        now = utc_now()
        try:
            facts = verify_evidence(quote, nonce, key, self.roots(), now)
            if signature is not None:
                verify_signature(key, signature, quote)
        except ProofInvalid as error:
            return Verdict(False, str(error), now)
        return Verdict(True, None, now, facts)

    def check_attestation(self, record: AttestationRecord) -> Verdict:
        """A node's stored attestation, verified again here: valid while unexpired."""
        verdict = self.check_evidence(record.quote, record.nonce, record.node_key)
        if verdict.valid and not record.valid:
            return Verdict(False, record.reason or "refused by a verifier", verdict.at, verdict.facts)
        if verdict.valid and verdict.at >= record.expires_at:
            return Verdict(False, f"expired at {record.expires_at.isoformat()}", verdict.at, verdict.facts)
        return verdict

    def record(self, node_id: str, evidence: Evidence, verdict: Verdict) -> AttestationRecord | None:
        """A fresh attestation this gateway verified becomes the node's; one it refused
        makes the node invalid (it takes no TEE work until it attests again)."""
        if not verdict.valid or verdict.facts is None:
            self.store.tee.invalidate(node_id, verdict.reason or "refused")
            return None
        record = AttestationRecord(
            node_id=node_id,
            platform=verdict.facts.platform,
            debug=verdict.facts.debug,
            mrenclave=verdict.facts.mrenclave,
            mrsigner=verdict.facts.mrsigner,
            quote=evidence.quote,
            nonce=evidence.nonce,
            node_key=evidence.node_key,
            valid=True,
            reason=None,
            verified_at=verdict.at,
            expires_at=verdict.at + timedelta(seconds=self.settings.attestation_ttl_seconds),
        )
        self.store.tee.save_attestation(record)
        return record

    def evidence(self, node_id: str, nonce: bytes, ring: Callable[[str], None]) -> Evidence:
        """A fresh quote of `node_id` over `nonce` (blocking: up to ANSWER_SECONDS)."""
        node = self._local().get(node_id)
        if node is not None:
            return node.evidence(nonce)
        challenge_id = self.store.tee.ask(node_id, nonce)
        try:
            ring(DOORBELL_PREFIX + node_id)
        except Exception:  # the node also looks at its next heartbeat
            logger.warning("could not ring %s", node_id, exc_info=True)
        deadline = time.monotonic() + ANSWER_SECONDS
        try:
            while time.monotonic() < deadline:
                answer = self.store.tee.challenge(challenge_id)
                if answer is not None and answer.answered_at is not None:
                    if answer.error or answer.quote is None or answer.node_key is None:
                        raise NodeDidNotAnswer(answer.error or "no quote")
                    return Evidence(answer.quote, nonce, answer.signature or b"", answer.node_key)
                time.sleep(0.05)
        finally:
            self.store.tee.forget(challenge_id)
        raise NodeDidNotAnswer(f"{node_id} did not answer within {ANSWER_SECONDS:.0f} s")


def answer_challenges(node: TeeNode, store: Store) -> int:
    """The node's side: answers every challenge waiting for it."""
    answered = 0
    for challenge in store.tee.pending_challenges(node.node_id):
        try:
            evidence = node.evidence(challenge.nonce)
        except Exception as error:
            store.tee.answer(challenge.challenge_id, error=f"{type(error).__name__}: {error}")
            continue
        store.tee.answer(
            challenge.challenge_id,
            quote=evidence.quote,
            signature=evidence.signature,
            node_key=evidence.node_key,
        )
        answered += 1
    return answered
