"""Receipts (in-toto Statements in DSSE envelopes) and proofs, verified offline; and what an
attacker can change without verification failing: nothing."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import replace

import pytest
from in_toto.models.metadata import ENVELOPE_PAYLOAD_TYPE
from in_toto.models.metadata import Envelope as InTotoEnvelope
from securesystemslib.signer import CryptoSigner

from runtime.execution.tee.measurement import canonical_json, sha256_hex
from runtime.execution.tee.node import TeeNode
from runtime.execution.tee.proof import Proof
from runtime.execution.tee.receipts import PAYLOAD_TYPE, STATEMENT_TYPE, key_from_dict, key_to_dict, sign
from runtime.execution.tee.roots import SimulationRoot, TrustedRoots
from runtime.execution.tee.verify import ProofInvalid, verify_proof
from tests.execution.tee.conftest import RESULT, make_node, sealed_proof


def _statement(proof: Proof) -> dict:
    return json.loads(base64.b64decode(proof.receipt["payload"]))


def test_a_receipt_is_an_in_toto_statement_in_a_dsse_envelope(node: TeeNode, roots: TrustedRoots) -> None:
    proof = sealed_proof(node)
    assert PAYLOAD_TYPE == ENVELOPE_PAYLOAD_TYPE
    statement = _statement(proof)
    assert statement["_type"] == STATEMENT_TYPE
    assert statement["subject"][0]["digest"]["sha256"] == sha256_hex(canonical_json(RESULT))
    predicate = statement["predicate"]
    assert predicate["quote"]["digest"]["sha256"] == sha256_hex(proof.quote)
    assert predicate["quote"]["nonce"] == proof.nonce.hex()
    assert predicate["code"] == [
        {"name": "echo", "digest": {"sha256": proof.measurement["functions"]["echo"]}}
    ]
    assert (predicate["platform"], predicate["debug"]) == ("sgx-sim", True)
    # in-toto's own envelope class verifies it with the node key.
    in_toto = InTotoEnvelope.from_dict(copy.deepcopy(proof.receipt))
    assert in_toto.verify([key_from_dict(proof.node_key)], 1)
    facts = verify_proof(proof, roots)
    assert facts.predicate["task_id"] == proof.task_id


def test_proof_file_round_trips(node: TeeNode, roots: TrustedRoots) -> None:
    proof = sealed_proof(node)
    assert Proof.from_bytes(proof.to_bytes()) == proof
    verify_proof(Proof.from_bytes(proof.to_bytes()), roots)


def _flips(data: bytes, step: int = 1) -> list[bytes]:
    out = []
    for index in range(0, len(data), step):
        flipped = bytearray(data)
        flipped[index] ^= 0x01
        out.append(bytes(flipped))
    return out


def test_flipping_any_byte_of_result_receipt_quote_or_nonce_fails(node: TeeNode, roots: TrustedRoots) -> None:
    proof = sealed_proof(node)
    tampered: list[Proof] = []
    for raw in _flips(canonical_json(RESULT)):
        try:
            tampered.append(replace(proof, result=json.loads(raw)))
        except ValueError:
            continue  # no longer JSON: a proof file holding it does not even parse
    for raw in _flips(proof.nonce):
        tampered.append(replace(proof, nonce=raw))
    for raw in _flips(proof.quote, step=11):
        tampered.append(replace(proof, quote=raw))
    payload = base64.b64decode(proof.receipt["payload"])
    for raw in _flips(payload, step=7):
        tampered.append(replace(proof, receipt={**proof.receipt, "payload": base64.b64encode(raw).decode()}))
    signature = base64.b64decode(proof.receipt["signatures"][0]["sig"])
    for raw in _flips(signature, step=3):
        sig = {**proof.receipt["signatures"][0], "sig": base64.b64encode(raw).decode()}
        tampered.append(replace(proof, receipt={**proof.receipt, "signatures": [sig]}))
    assert len(tampered) > 400
    for bad in tampered:
        with pytest.raises(ProofInvalid):
            verify_proof(bad, roots)


def test_a_receipt_signed_by_another_key_fails(node: TeeNode, roots: TrustedRoots) -> None:
    proof = sealed_proof(node)
    forger = CryptoSigner.generate_ecdsa()
    forged = sign(_statement(proof), forger)
    with pytest.raises(ProofInvalid, match="receipt"):
        verify_proof(replace(proof, receipt=forged), roots)
    # ...and naming the forger's key instead: the quote does not bind it.
    with pytest.raises(ProofInvalid, match="report data"):
        verify_proof(replace(proof, receipt=forged, node_key=key_to_dict(forger.public_key)), roots)


def test_a_receipt_of_another_node_of_the_same_root_fails(root: SimulationRoot, store, roots) -> None:
    first, second = make_node(root, store, "node-a"), make_node(root, store, "node-b")
    proof, other = sealed_proof(first), sealed_proof(second)
    with pytest.raises(ProofInvalid):
        verify_proof(replace(proof, receipt=other.receipt), roots)
    with pytest.raises(ProofInvalid):
        verify_proof(replace(proof, quote=other.quote), roots)


def test_a_result_swapped_for_a_verified_one_of_another_task_fails(
    node: TeeNode, roots: TrustedRoots
) -> None:
    proof, other = sealed_proof(node), sealed_proof(node, {"greeting": "other"})
    verify_proof(other, roots)
    with pytest.raises(ProofInvalid, match="result"):
        verify_proof(replace(proof, result=other.result), roots)


def test_code_outside_the_measurement_fails(node: TeeNode, roots: TrustedRoots) -> None:
    proof = sealed_proof(node)
    measurement = {**proof.measurement, "functions": {**proof.measurement["functions"], "echo": "0" * 64}}
    with pytest.raises(ProofInvalid, match=r"manifest|code"):
        verify_proof(replace(proof, measurement=measurement), roots)


def test_an_untrusted_root_fails_a_proof(node: TeeNode) -> None:
    with pytest.raises(ProofInvalid, match="trusted root"):
        verify_proof(sealed_proof(node), TrustedRoots.of(SimulationRoot.create()))
