"""Attesters: what makes a quote binding 64 bytes of report data to the running enclave.

`Attester` is the interface a hardware attester (SGX DCAP through the quoting enclave,
e.g. via Gramine's `/dev/attestation`) would implement. `SimulatedSgxAttester` is the one
this build has, in the manner of Confidential Containers' "sample" attester and SGX's
`SIM` mode: real P-256 keys and signatures, a real SGX DCAP v3 layout, the DEBUG attribute
set, and a PCK certificate issued by the declared simulation root, never by Intel.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from runtime.execution.tee.quote import (
    CERT_DATA_PCK_CHAIN,
    INTEL_QE_VENDOR_ID,
    Quote,
    ReportBody,
    raw_public_key,
    raw_signature,
)
from runtime.execution.tee.roots import SimulationRoot

SIM_PLATFORM = "sgx-sim"
#: MRENCLAVE of the simulated quoting enclave.
SIM_QE_MEASUREMENT = hashlib.sha256(b"grey sgx-sim quoting enclave v1").digest()
_ECDSA = ec.ECDSA(hashes.SHA256())


class Attester(Protocol):
    """Makes quotes for the enclave this worker runs in."""

    @property
    def platform(self) -> str:
        """What the quotes are: `sgx-sim` here; a hardware attester would say `sgx`."""
        ...

    @property
    def debug(self) -> bool:
        """True when the enclave runs in debug mode (always, in simulation)."""
        ...

    def quote(self, report_data: bytes) -> bytes:
        """A quote of this enclave carrying `report_data` (64 bytes)."""
        ...


class SimulatedSgxAttester:
    """A simulated SGX platform and quoting enclave, certified by a simulation root.

    Per instance (one per TEE worker node): a platform (PCK) key and its certificate, and
    an attestation key that the simulated quoting enclave's report binds and the PCK key
    signs, as DCAP does. MRENCLAVE is the worker's code measurement; MRSIGNER the
    simulation root's key digest.
    """

    platform = SIM_PLATFORM
    debug = True

    def __init__(self, root: SimulationRoot, node_id: str, mrenclave: bytes) -> None:
        self.mrenclave, self.mrsigner = mrenclave, root.signer_measurement()
        pck = ec.generate_private_key(ec.SECP256R1())
        self._attestation_key = ec.generate_private_key(ec.SECP256R1())
        self._ak_raw = raw_public_key(self._attestation_key.public_key())
        self._auth = bytes(range(32))
        qe_report = ReportBody(
            mrenclave=SIM_QE_MEASUREMENT,
            mrsigner=self.mrsigner,
            report_data=hashlib.sha256(self._ak_raw + self._auth).digest() + bytes(32),
        )
        chain = root.issue_pck(pck.public_key(), node_id).public_bytes(serialization.Encoding.PEM)
        self._template = Quote(
            qe_svn=1,
            pce_svn=1,
            qe_vendor_id=INTEL_QE_VENDOR_ID,
            body=qe_report,  # replaced per quote
            signature=bytes(64),
            attestation_key=self._ak_raw,
            qe_report=qe_report,
            qe_report_signature=raw_signature(pck.sign(qe_report.pack(), _ECDSA)),
            qe_auth_data=self._auth,
            cert_type=CERT_DATA_PCK_CHAIN,
            cert_data=chain + root.cert_pem(),
        )

    def quote(self, report_data: bytes) -> bytes:
        body = ReportBody(mrenclave=self.mrenclave, mrsigner=self.mrsigner, report_data=report_data)
        template = self._template
        signed = template.header() + body.pack()
        signature = raw_signature(self._attestation_key.sign(signed, _ECDSA))
        return replace(template, body=body, signature=signature).pack()
