"""SGX DCAP quotes, version 3, byte for byte (Intel's `sgx_quote_3_t`).

```
header               48  version=3, att_key_type=2 (ECDSA P-256), reserved, qe_svn, pce_svn,
                         qe_vendor_id (16), user_data (20)
ISV report body     384  cpu_svn, misc_select, ..., attributes (flags: bit 1 = DEBUG),
                         MRENCLAVE (32), MRSIGNER (32), ..., isv_prod_id, isv_svn, ...,
                         report_data (64)
signature data len    4
signature data           ECDSA signature (r||s, 64) of header+report body by the
                         attestation key; the attestation key (x||y, 64); the quoting
                         enclave's report body (384) and its signature by the PCK key (64);
                         QE authentication data (u16 length + bytes); certification data
                         (u16 type, 5 = PCK certificate chain as PEM; u32 length + bytes)
```

This module only packs and unpacks; `attester.py` makes quotes and `verify.py` checks them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

VERSION = 3
ATT_KEY_ECDSA_P256 = 2
CERT_DATA_PCK_CHAIN = 5
#: Intel's QE vendor id (939A7233-F79C-4CA9-940A-0DB3957F0607), as SGX quotes carry it.
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
FLAG_INIT, FLAG_DEBUG, FLAG_MODE64BIT = 0x1, 0x2, 0x4

_HEADER = struct.Struct("<HHIHH16s20s")
_BODY = struct.Struct("<16sI12s16s16s32s32s32s32s64sHHH42s16s64s")
HEADER_SIZE, BODY_SIZE = _HEADER.size, _BODY.size  # 48, 384


class QuoteFormatError(ValueError):
    """The bytes are no SGX DCAP v3 quote."""


@dataclass(frozen=True, slots=True)
class ReportBody:
    """`sgx_report_body_t`: what the enclave's report says of it."""

    mrenclave: bytes
    mrsigner: bytes
    report_data: bytes
    flags: int = FLAG_INIT | FLAG_DEBUG | FLAG_MODE64BIT
    xfrm: int = 0x3
    cpu_svn: bytes = bytes(16)
    misc_select: int = 0
    isv_prod_id: int = 0
    isv_svn: int = 0

    @property
    def debug(self) -> bool:
        return bool(self.flags & FLAG_DEBUG)

    def pack(self) -> bytes:
        if len(self.mrenclave) != 32 or len(self.mrsigner) != 32 or len(self.report_data) != 64:
            raise QuoteFormatError("MRENCLAVE and MRSIGNER take 32 bytes, report data 64")
        attributes = struct.pack("<QQ", self.flags, self.xfrm)
        return _BODY.pack(
            self.cpu_svn,
            self.misc_select,
            bytes(12),
            bytes(16),
            attributes,
            self.mrenclave,
            bytes(32),
            self.mrsigner,
            bytes(32),
            bytes(64),
            self.isv_prod_id,
            self.isv_svn,
            0,
            bytes(42),
            bytes(16),
            self.report_data,
        )

    @classmethod
    def unpack(cls, raw: bytes) -> ReportBody:
        if len(raw) != BODY_SIZE:
            raise QuoteFormatError(f"a report body takes {BODY_SIZE} bytes, not {len(raw)}")
        fields = _BODY.unpack(raw)
        flags, xfrm = struct.unpack("<QQ", fields[4])
        return cls(
            mrenclave=fields[5],
            mrsigner=fields[7],
            report_data=fields[15],
            flags=flags,
            xfrm=xfrm,
            cpu_svn=fields[0],
            misc_select=fields[1],
            isv_prod_id=fields[10],
            isv_svn=fields[11],
        )


@dataclass(frozen=True, slots=True)
class Quote:
    """A parsed quote; `signed_part` is what the attestation key signed."""

    qe_svn: int
    pce_svn: int
    qe_vendor_id: bytes
    body: ReportBody
    signature: bytes  # r||s, 64 bytes
    attestation_key: bytes  # x||y, 64 bytes
    qe_report: ReportBody
    qe_report_signature: bytes  # r||s by the PCK key
    qe_auth_data: bytes
    cert_type: int
    cert_data: bytes  # PEM chain: PCK certificate first
    signed_part: bytes = b""  # parsed quotes: header + report body as received
    qe_report_raw: bytes = b""  # parsed quotes: the QE report body as received

    def header(self) -> bytes:
        return _HEADER.pack(
            VERSION, ATT_KEY_ECDSA_P256, 0, self.qe_svn, self.pce_svn, self.qe_vendor_id, bytes(20)
        )

    def pack(self) -> bytes:
        signed = self.header() + self.body.pack()
        sig_data = (
            self.signature
            + self.attestation_key
            + self.qe_report.pack()
            + self.qe_report_signature
            + struct.pack("<H", len(self.qe_auth_data))
            + self.qe_auth_data
            + struct.pack("<HI", self.cert_type, len(self.cert_data))
            + self.cert_data
        )
        return signed + struct.pack("<I", len(sig_data)) + sig_data

    @classmethod
    def unpack(cls, raw: bytes) -> Quote:
        reader = _Reader(raw)
        version, key_type, _, qe_svn, pce_svn, vendor, _ = _HEADER.unpack(reader.take(HEADER_SIZE))
        if version != VERSION or key_type != ATT_KEY_ECDSA_P256:
            raise QuoteFormatError(f"quote version {version}, key type {key_type}: expected 3 and 2")
        body = ReportBody.unpack(reader.take(BODY_SIZE))
        signed = raw[: HEADER_SIZE + BODY_SIZE]
        (length,) = struct.unpack("<I", reader.take(4))
        if length != reader.left():
            raise QuoteFormatError(f"signature data says {length} bytes; {reader.left()} follow")
        signature, attestation_key = reader.take(64), reader.take(64)
        qe_report_raw, qe_report_signature = reader.take(BODY_SIZE), reader.take(64)
        (auth_size,) = struct.unpack("<H", reader.take(2))
        auth = reader.take(auth_size)
        cert_type, cert_size = struct.unpack("<HI", reader.take(6))
        cert_data = reader.take(cert_size)
        if reader.left():
            raise QuoteFormatError(f"{reader.left()} bytes after the certification data")
        return cls(
            qe_svn,
            pce_svn,
            vendor,
            body,
            signature,
            attestation_key,
            ReportBody.unpack(qe_report_raw),
            qe_report_signature,
            auth,
            cert_type,
            cert_data,
            signed,
            qe_report_raw,
        )


class _Reader:
    def __init__(self, raw: bytes) -> None:
        self.raw, self.at = raw, 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.raw):
            raise QuoteFormatError(f"quote ends at byte {len(self.raw)}; needed {self.at + size}")
        chunk = self.raw[self.at : self.at + size]
        self.at += size
        return chunk

    def left(self) -> int:
        return len(self.raw) - self.at


# -- the encodings SGX uses for P-256 keys and signatures ----------------------------------


def raw_signature(der: bytes) -> bytes:
    """DER ECDSA signature -> r||s (32 bytes each), as quotes carry it."""
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def der_signature(raw: bytes) -> bytes:
    if len(raw) != 64:
        raise QuoteFormatError("an ECDSA P-256 signature takes 64 bytes")
    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def raw_public_key(key: ec.EllipticCurvePublicKey) -> bytes:
    """x||y (64 bytes) of a P-256 public key."""
    numbers = key.public_numbers()
    return numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


def public_key_of(raw: bytes) -> ec.EllipticCurvePublicKey:
    if len(raw) != 64:
        raise QuoteFormatError("a P-256 attestation key takes 64 bytes")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + raw)
