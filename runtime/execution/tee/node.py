"""The enclave side of one TEE worker node: its key, measurement, attestation and receipts.

Made when a `tee` pool starts (`TeeNode.simulated`): the node key (ECDSA P-256) is
generated here, in the worker's memory, and never written anywhere; the measurement
manifest is taken of the code loaded now. The node attests itself at start and renews
at half its attestation's life (`attest`, verified against the configured trusted roots
and recorded in the store); it takes TEE work only while `ready()`. After each task it
`seal`s the result: a fresh quote over a fresh nonce and the receipt signed by its key,
written with the task's completion.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from securesystemslib.signer import CryptoSigner

from runtime.execution.pipeline import plan_of
from runtime.execution.tee.attester import Attester, SimulatedSgxAttester
from runtime.execution.tee.measurement import manifest, mrenclave_of
from runtime.execution.tee.quote import Quote
from runtime.execution.tee.receipts import key_der, key_to_dict, sign, statement
from runtime.execution.tee.roots import SimulationRoot, TrustedRoots
from runtime.execution.tee.settings import TeeSettings
from runtime.execution.tee.verify import ProofInvalid, binding, verify_evidence
from runtime.store import AttestationRecord, ProofRecord, Store, TaskRecord
from runtime.store.coltypes import utc_now

logger = logging.getLogger("grey.tee")
NONCE_BYTES = 32


class Unmeasured(Exception):
    """The task's code was not part of the node's measurement (registered after it started)."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """A quote over a nonce, and the node key's signature (DER ECDSA) of the quote."""

    quote: bytes
    nonce: bytes
    signature: bytes
    node_key: dict[str, Any]


def functions_of(task: TaskRecord) -> list[str]:
    """The task functions a task runs."""
    payload = task.payload
    if task.type == "pipeline":
        stages = plan_of(dict(payload)).stages
        return sorted({str(step["function"]) for stage in stages for step in stage})
    return [str(payload.get("function") or "echo")]


class TeeNode:
    def __init__(
        self,
        node_id: str,
        attester: Attester,
        manifest_: dict[str, Any],
        roots: TrustedRoots,
        store: Store,
        ttl_seconds: float,
    ) -> None:
        self.node_id, self.attester, self.manifest, self.roots = node_id, attester, manifest_, roots
        self.store, self.ttl = store, timedelta(seconds=ttl_seconds)
        self.mrenclave = mrenclave_of(manifest_).hex()
        self._signer = CryptoSigner.generate_ecdsa()
        self.key = key_to_dict(self._signer.public_key)
        self._key_der = key_der(self._signer.public_key)
        self._lock = threading.Lock()
        self.state: AttestationRecord | None = None

    @classmethod
    def simulated(
        cls, node_id: str, settings: TeeSettings, store: Store, attester: Attester | None = None
    ) -> TeeNode:
        """A node measuring this process's code, on the simulated SGX platform of `settings`'
        simulation root (or on `attester`), trusting the roots `settings` name."""
        measured = manifest()
        if attester is None:
            root = SimulationRoot.load_or_create(settings.directory)
            attester = SimulatedSgxAttester(root, node_id, mrenclave_of(measured))
        roots = TrustedRoots.from_files(settings.root_files())
        return cls(node_id, attester, measured, roots, store, settings.attestation_ttl_seconds)

    # -- attestation ----------------------------------------------------------------------

    def evidence(self, nonce: bytes) -> Evidence:
        quote = self.attester.quote(binding(self._key_der, nonce))
        signature = bytes.fromhex(self._signer.sign(quote).signature)
        return Evidence(quote, nonce, signature, self.key)

    def attest(self) -> AttestationRecord:
        """A fresh quote over a fresh nonce, verified against the trusted roots, recorded."""
        self.store.tee.save_measurement(self.mrenclave, self.manifest)
        evidence = self.evidence(os.urandom(NONCE_BYTES))
        now = utc_now()
        try:
            verify_evidence(evidence.quote, evidence.nonce, evidence.node_key, self.roots, now)
            valid, reason = True, None
        except ProofInvalid as error:
            valid, reason = False, str(error)
            logger.warning("TEE node %s failed its attestation: %s", self.node_id, reason)
        body = Quote.unpack(evidence.quote).body
        record = AttestationRecord(
            node_id=self.node_id,
            platform=self.attester.platform,
            debug=self.attester.debug,
            mrenclave=body.mrenclave.hex(),
            mrsigner=body.mrsigner.hex(),
            quote=evidence.quote,
            nonce=evidence.nonce,
            node_key=self.key,
            valid=valid,
            reason=reason,
            verified_at=now,
            expires_at=now + self.ttl,
        )
        self.store.tee.save_attestation(record)
        with self._lock:
            self.state = record
        return record

    def beat(self) -> bool:
        """At each heartbeat: renew at half-life; follow a verifier that refused the node
        since (its row says invalid). True while the node may take TEE work."""
        now = utc_now()
        state = self.state
        if state is None or now >= state.verified_at + self.ttl / 2:
            try:
                self.attest()
            except Exception:  # an attester that fails: the attestation runs out
                logger.warning("TEE node %s could not renew its attestation", self.node_id, exc_info=True)
        else:
            stored = self.store.tee.attestation(self.node_id)
            if stored is not None and not stored.valid and state.valid:
                with self._lock:
                    self.state = replace(state, valid=False, reason=stored.reason)
        ready = self.ready()
        self.store.tee.set_enabled(self.node_id, ready)
        return ready

    def ready(self, now: datetime | None = None) -> bool:
        state = self.state
        return state is not None and state.valid and (now or utc_now()) < state.expires_at

    def summary(self) -> dict[str, Any]:
        """What the node's heartbeat says of its TEE (nodes.info["tee"])."""
        state = self.state
        return {
            "platform": self.attester.platform,
            "debug": self.attester.debug,
            "mrenclave": self.mrenclave,
            "valid": self.ready(),
            "expires_at": state.expires_at.isoformat() if state else None,
        }

    # -- receipts -------------------------------------------------------------------------

    def check(self, task: TaskRecord) -> None:
        """Unmeasured when the task would run code the measurement does not hold."""
        measured = self.manifest["functions"]
        missing = [name for name in functions_of(task) if name not in measured]
        if missing:
            raise Unmeasured(f"{', '.join(missing)} not in this TEE node's measurement (started before)")

    def seal(self, task: TaskRecord, result: Any, started: datetime, finished: datetime) -> ProofRecord:
        """The proof of a completed task: a fresh quote and the receipt signed by the node key."""
        nonce = os.urandom(NONCE_BYTES)
        evidence = self.evidence(nonce)
        body = Quote.unpack(evidence.quote).body
        measured = self.manifest["functions"]
        receipt = statement(
            task_id=task.task_id,
            payload=task.payload,
            code={name: measured.get(name, "") for name in functions_of(task)},
            result=result,
            platform=self.attester.platform,
            debug=self.attester.debug,
            mrenclave=body.mrenclave.hex(),
            mrsigner=body.mrsigner.hex(),
            node_id=self.node_id,
            keyid=str(self.key["keyid"]),
            quote=evidence.quote,
            nonce=nonce,
            started_at=started,
            finished_at=finished,
        )
        return ProofRecord(
            task_id=task.task_id,
            node_id=self.node_id,
            platform=self.attester.platform,
            debug=self.attester.debug,
            mrenclave=body.mrenclave.hex(),
            mrsigner=body.mrsigner.hex(),
            quote=evidence.quote,
            nonce=nonce,
            node_key=self.key,
            receipt=sign(receipt, self._signer),
            created_at=finished,
        )
