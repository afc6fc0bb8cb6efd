"""Verification, offline: quotes against trusted simulation roots, proofs end to end.

A quote is accepted when its PCK certificate chain leads to a trusted root, the PCK key
signed the quoting enclave's report, that report binds the attestation key, the
attestation key signed the header and report body, and the report says DEBUG (a
simulation root certifies nothing else). A proof (`Proof`) is accepted when, besides, the
report data is SHA-256(node key ‖ nonce), the node key signed the receipt, the receipt
names that quote, nonce, measurement and the result's digest, and its code digest is the
one the measurement manifest (whose digest is MRENCLAVE) gives for the function.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from runtime.execution.tee.attester import SIM_PLATFORM
from runtime.execution.tee.measurement import mrenclave_of, sha256_hex
from runtime.execution.tee.proof import Proof
from runtime.execution.tee.quote import (
    CERT_DATA_PCK_CHAIN,
    Quote,
    QuoteFormatError,
    der_signature,
    public_key_of,
)
from runtime.execution.tee.receipts import PREDICATE_TYPE, key_der, open_envelope, result_digest
from runtime.execution.tee.roots import ChainInvalid, TrustedRoots, fingerprint
from runtime.store.coltypes import utc_now

_ECDSA = ec.ECDSA(hashes.SHA256())


class ProofInvalid(ValueError):
    """Verification failed; the message says which check."""


@dataclass(frozen=True, slots=True)
class QuoteFacts:
    """What a verified quote says."""

    platform: str
    debug: bool
    mrenclave: str
    mrsigner: str
    report_data: bytes
    root: str  # fingerprint of the trusted root reached


@dataclass(frozen=True, slots=True)
class ProofFacts:
    quote: QuoteFacts
    statement: dict[str, Any]

    @property
    def predicate(self) -> dict[str, Any]:
        value: dict[str, Any] = self.statement["predicate"]
        return value


def _signed(key: ec.EllipticCurvePublicKey, raw_signature: bytes, data: bytes, what: str) -> None:
    try:
        key.verify(der_signature(raw_signature), data, _ECDSA)
    except (InvalidSignature, QuoteFormatError):
        raise ProofInvalid(f"{what}: signature does not verify") from None


def verify_quote(raw: bytes, roots: TrustedRoots, now: datetime | None = None) -> QuoteFacts:
    """The facts of a quote whose every signature checks out up to a trusted root."""
    try:
        quote = Quote.unpack(raw)
        if quote.cert_type != CERT_DATA_PCK_CHAIN:
            raise ProofInvalid(f"certification data type {quote.cert_type}: expected a PCK chain (5)")
        chain = x509.load_pem_x509_certificates(quote.cert_data)
        if b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in chain) != quote.cert_data:
            raise ProofInvalid("the certification data is not a plain PEM chain")
        root = roots.verify_chain(chain, now or utc_now())
        pck = chain[0].public_key()
        if not isinstance(pck, ec.EllipticCurvePublicKey):
            raise ProofInvalid("the PCK certificate holds no P-256 key")
        _signed(pck, quote.qe_report_signature, quote.qe_report_raw, "quoting enclave report")
        bound = hashlib.sha256(quote.attestation_key + quote.qe_auth_data).digest()
        if quote.qe_report.report_data[:32] != bound:
            raise ProofInvalid("the quoting enclave's report does not bind the attestation key")
        _signed(public_key_of(quote.attestation_key), quote.signature, quote.signed_part, "quote")
    except ProofInvalid:
        raise
    except (QuoteFormatError, ChainInvalid) as error:
        raise ProofInvalid(str(error)) from None
    except Exception as error:  # hostile bytes: whatever the parsers raise is a refusal
        raise ProofInvalid(f"malformed quote: {type(error).__name__}: {error}") from None
    if not quote.body.debug:
        raise ProofInvalid("a simulation root certifies debug enclaves only; this quote claims production")
    return QuoteFacts(
        platform=SIM_PLATFORM,
        debug=True,
        mrenclave=quote.body.mrenclave.hex(),
        mrsigner=quote.body.mrsigner.hex(),
        report_data=quote.body.report_data,
        root=fingerprint(root),
    )


def binding(key: bytes, nonce: bytes) -> bytes:
    """The 64 bytes of report data a quote binding `key` (DER) and `nonce` carries."""
    return hashlib.sha256(key + nonce).digest() + bytes(32)


def node_key(data: dict[str, Any]) -> SSlibKey:
    """The node key of a proof, its key id recomputed (a key id is never taken on trust)."""
    try:
        public = serialization.load_pem_public_key(str(data["keyval"]["public"]).encode())
        key = SSlibKey.from_crypto(public, scheme=str(data["scheme"]))
    except (KeyError, TypeError, ValueError) as error:
        raise ProofInvalid(f"malformed node key: {error}") from None
    if data.get("keyid") not in (None, key.keyid):
        raise ProofInvalid("the node key's id does not match the key")
    return key


def verify_evidence(
    quote: bytes, nonce: bytes, key: dict[str, Any], roots: TrustedRoots, now: datetime | None = None
) -> QuoteFacts:
    """A quote that binds `key` and `nonce`."""
    facts = verify_quote(quote, roots, now)
    if facts.report_data != binding(key_der(node_key(key)), nonce):
        raise ProofInvalid("the quote's report data is not SHA-256(node key ‖ nonce)")
    return facts


def verify_signature(key: dict[str, Any], signature: bytes, data: bytes) -> None:
    """The node key's ECDSA (DER) signature of `data`."""
    public = serialization.load_pem_public_key(str(node_key(key).keyval["public"]).encode())
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise ProofInvalid("the node key is no P-256 key")
    try:
        public.verify(signature, data, _ECDSA)
    except (InvalidSignature, ValueError):
        raise ProofInvalid("the node key's signature of the quote does not verify") from None


def verify_proof(proof: Proof, roots: TrustedRoots, now: datetime | None = None) -> ProofFacts:
    """Every check of a proof; ProofInvalid names the first that fails."""
    facts = verify_evidence(proof.quote, proof.nonce, proof.node_key, roots, now)
    try:
        statement = open_envelope(proof.receipt, node_key(proof.node_key))
    except (VerificationError, ValueError, KeyError, TypeError) as error:
        raise ProofInvalid(f"receipt: {error or 'not signed by the node key'}") from None
    predicate = statement.get("predicate") or {}
    expect = {
        "predicate type": (statement.get("predicateType"), PREDICATE_TYPE),
        "task": (predicate.get("task_id"), proof.task_id),
        "node": ((predicate.get("node") or {}).get("node_id"), proof.node_id),
        "platform": (predicate.get("platform"), facts.platform),
        "debug": (predicate.get("debug"), facts.debug),
        "proof's platform": (proof.platform, facts.platform),
        "proof's debug flag": (proof.debug, facts.debug),
        "quote digest": (_digest(predicate.get("quote")), sha256_hex(proof.quote)),
        "nonce": ((predicate.get("quote") or {}).get("nonce"), proof.nonce.hex()),
        "MRENCLAVE": ((predicate.get("measurement") or {}).get("mrenclave"), facts.mrenclave),
        "MRSIGNER": ((predicate.get("measurement") or {}).get("mrsigner"), facts.mrsigner),
        "measurement manifest": (mrenclave_of(proof.measurement).hex(), facts.mrenclave),
    }
    for what, (stated, actual) in expect.items():
        if stated is None or stated != actual:
            raise ProofInvalid(f"{what}: the receipt says {stated!r}, the evidence {actual!r}")
    _check_code(predicate.get("code"), proof.measurement)
    subjects = statement.get("subject") or []
    digests = [(s.get("digest") or {}).get("sha256") for s in subjects if isinstance(s, dict)]
    if result_digest(proof.result) not in digests:
        raise ProofInvalid("result: its SHA-256 is not the receipt's subject")
    return ProofFacts(facts, statement)


def _digest(descriptor: Any) -> Any:
    return ((descriptor or {}).get("digest") or {}).get("sha256") if isinstance(descriptor, dict) else None


def _check_code(code: Any, measurement: dict[str, Any]) -> None:
    """Every function the receipt says ran has the digest the measurement gives it."""
    measured = measurement.get("functions") or {}
    if not isinstance(code, list) or not code:
        raise ProofInvalid("code: the receipt names no function")
    for entry in code:
        name = entry.get("name") if isinstance(entry, dict) else None
        if _digest(entry) is None or _digest(entry) != measured.get(name):
            raise ProofInvalid(f"code: {name!r} is not the function the measurement holds")
