"""SGX DCAP v3 quotes in simulation: the real byte layout, real signatures, a declared root."""

from __future__ import annotations

import os
import struct
from dataclasses import replace

import pytest

from runtime.execution.tee.attester import SimulatedSgxAttester
from runtime.execution.tee.quote import BODY_SIZE, FLAG_DEBUG, HEADER_SIZE, Quote
from runtime.execution.tee.roots import SimulationRoot, TrustedRoots
from runtime.execution.tee.verify import ProofInvalid, binding, verify_evidence, verify_quote
from tests.execution.tee.conftest import MRENCLAVE

REPORT_DATA = bytes(range(64))


def test_quote_has_the_sgx_dcap_v3_layout(root: SimulationRoot) -> None:
    raw = SimulatedSgxAttester(root, "n1", MRENCLAVE).quote(REPORT_DATA)
    version, key_type = struct.unpack_from("<HH", raw, 0)
    assert (version, key_type) == (3, 2)  # v3, ECDSA-256-with-P-256
    assert raw[12:28] == bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")  # QE vendor id
    body = HEADER_SIZE
    flags, _ = struct.unpack_from("<QQ", raw, body + 48)  # attributes
    assert flags & FLAG_DEBUG  # simulation: a debug enclave, always
    assert raw[body + 64 : body + 96] == MRENCLAVE
    assert raw[body + 128 : body + 160] == root.signer_measurement()  # MRSIGNER
    assert raw[body + 320 : body + 384] == REPORT_DATA
    (sig_len,) = struct.unpack_from("<I", raw, HEADER_SIZE + BODY_SIZE)
    assert len(raw) == HEADER_SIZE + BODY_SIZE + 4 + sig_len
    quote = Quote.unpack(raw)
    assert quote.cert_type == 5 and quote.cert_data.startswith(b"-----BEGIN CERTIFICATE-----")
    assert quote.pack() == raw


def test_a_quote_verifies_up_to_the_trusted_simulation_root(
    root: SimulationRoot, roots: TrustedRoots
) -> None:
    facts = verify_quote(SimulatedSgxAttester(root, "n1", MRENCLAVE).quote(REPORT_DATA), roots)
    assert (facts.platform, facts.debug) == ("sgx-sim", True)
    assert facts.mrenclave == MRENCLAVE.hex() and facts.report_data == REPORT_DATA
    assert facts.root == roots.fingerprints()[0]


def test_flipping_any_byte_of_a_quote_fails_it(root: SimulationRoot, roots: TrustedRoots) -> None:
    raw = SimulatedSgxAttester(root, "n1", MRENCLAVE).quote(REPORT_DATA)
    signed = HEADER_SIZE + BODY_SIZE
    # Every byte of the header and report body, every third of the signature data (~2 KiB:
    # every one of those fails too, in 2 s).
    for index in [*range(signed), *range(signed, len(raw), 3), len(raw) - 1]:
        tampered = bytearray(raw)
        tampered[index] ^= 0x01
        with pytest.raises(ProofInvalid):
            verify_quote(bytes(tampered), roots)


def test_a_quote_signed_by_an_untrusted_root_is_refused(root: SimulationRoot, roots: TrustedRoots) -> None:
    impostor = SimulationRoot.create()  # same name, same layout, another key
    raw = SimulatedSgxAttester(impostor, "n1", MRENCLAVE).quote(REPORT_DATA)
    with pytest.raises(ProofInvalid, match="not signed by a trusted root"):
        verify_quote(raw, roots)
    with pytest.raises(ProofInvalid, match="no simulation root is trusted"):
        verify_quote(raw, TrustedRoots())
    assert verify_quote(raw, TrustedRoots.of(impostor)).debug  # trusting it is a decision


def test_a_chain_that_swaps_in_another_root_certificate_is_refused(
    root: SimulationRoot, roots: TrustedRoots
) -> None:
    quote = Quote.unpack(SimulatedSgxAttester(root, "n1", MRENCLAVE).quote(REPORT_DATA))
    pck_pem = quote.cert_data.split(b"-----END CERTIFICATE-----\n")[0] + b"-----END CERTIFICATE-----\n"
    swapped = replace(quote, cert_data=pck_pem + SimulationRoot.create().cert_pem()).pack()
    with pytest.raises(ProofInvalid, match="not signed by the next certificate"):
        verify_quote(swapped, roots)


def test_a_simulation_quote_claiming_production_is_refused(root: SimulationRoot, roots: TrustedRoots) -> None:
    attester = SimulatedSgxAttester(root, "n1", MRENCLAVE)
    quote = Quote.unpack(attester.quote(REPORT_DATA))
    production = replace(quote.body, flags=quote.body.flags & ~FLAG_DEBUG)
    # Re-signed with the same attestation key: only the DEBUG bit differs.
    signed = quote.header() + production.pack()
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from runtime.execution.tee.quote import raw_signature

    signature = raw_signature(attester._attestation_key.sign(signed, ec.ECDSA(hashes.SHA256())))
    raw = replace(quote, body=production, signature=signature).pack()
    with pytest.raises(ProofInvalid, match="debug enclaves only"):
        verify_quote(raw, roots)


def test_evidence_binds_the_node_key_and_the_nonce(node, roots: TrustedRoots) -> None:
    nonce = os.urandom(32)
    evidence = node.evidence(nonce)
    assert Quote.unpack(evidence.quote).body.report_data[:32] == binding(node._key_der, nonce)[:32]
    verify_evidence(evidence.quote, nonce, evidence.node_key, roots)
    with pytest.raises(ProofInvalid, match="report data"):
        verify_evidence(evidence.quote, os.urandom(32), evidence.node_key, roots)
