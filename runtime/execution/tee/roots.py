"""The simulation root: the declared CA that stands in for Intel's SGX root in simulation mode.

On hardware, Intel's SGX Root CA certifies each platform's PCK key and only Intel holds its
private key. In simulation there is no such authority: a *simulation root* (a self-signed
P-256 CA named "Grey SGX Simulation Root CA") is made once, kept in files
(`<GREY_TEE_DIR>/sim-root.pem` and `sim-root.key`, mode 0600), and each TEE worker node
certifies its own simulated PCK key with it. Anyone holding `sim-root.key` can make quotes
a verifier trusting that root accepts: that is what simulation means, and why verifiers
trust a root only when configured to (`TrustedRoots`, from `GREY_TEE_TRUSTED_ROOTS` or the
command line), and why every answer says `sgx-sim` and `debug`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from runtime.store.coltypes import utc_now

ROOT_NAME = "Grey SGX Simulation Root CA (not hardware)"
ROOT_CERT_FILE, ROOT_KEY_FILE = "sim-root.pem", "sim-root.key"
ROOT_YEARS, PCK_DAYS = 10, 30


class ChainInvalid(ValueError):
    """A certificate chain that does not end at a trusted root, or is broken on the way."""


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Grey (SGX simulation)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@dataclass(frozen=True)
class SimulationRoot:
    """The simulation CA's certificate and private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, now: datetime | None = None) -> SimulationRoot:
        now = now or utc_now()
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(ROOT_NAME)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365 * ROOT_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load_or_create(cls, directory: Path) -> SimulationRoot:
        """The root kept in `directory`, made there first if missing. Several processes may
        race: each writes temporary files, the first to link its key in place wins and
        moves its certificate there; the others read what it wrote."""
        cert_path, key_path = directory / ROOT_CERT_FILE, directory / ROOT_KEY_FILE
        if not key_path.exists():
            directory.mkdir(parents=True, exist_ok=True)
            root = cls.create()
            if _claim(directory, key_path, cert_path, root):
                return root
        for _ in range(100):  # the winner moves its certificate in right after its key
            if cert_path.exists():
                break
            time.sleep(0.02)
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path} holds no EC private key")
        return cls(x509.load_pem_x509_certificate(cert_path.read_bytes()), key)

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def signer_measurement(self) -> bytes:
        """MRSIGNER of the enclaves this root stands behind: SHA-256 of its public key (DER)."""
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(der).digest()

    def issue_pck(self, public_key: ec.EllipticCurvePublicKey, node_id: str) -> x509.Certificate:
        """The simulated PCK certificate of one node's platform key."""
        now = utc_now()
        return (
            x509.CertificateBuilder()
            .subject_name(_name(f"Grey SGX-SIM PCK Certificate {node_id}"[:64]))
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=PCK_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _claim(directory: Path, key_path: Path, cert_path: Path, root: SimulationRoot) -> bool:
    """Puts `root` in place unless another process did first (False then)."""
    suffix = f".{os.getpid()}.{os.urandom(4).hex()}.tmp"
    key_tmp, cert_tmp = directory / (ROOT_KEY_FILE + suffix), directory / (ROOT_CERT_FILE + suffix)
    try:
        fd = os.open(key_tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(root.key_pem())
        cert_tmp.write_bytes(root.cert_pem())
        try:
            os.link(key_tmp, key_path)  # atomic: exactly one process gets here
        except FileExistsError:
            return False
        os.replace(cert_tmp, cert_path)
        return True
    finally:
        for path in (key_tmp, cert_tmp):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


@dataclass(frozen=True)
class TrustedRoots:
    """The simulation roots a verifier was configured to trust."""

    certs: tuple[x509.Certificate, ...] = ()

    @classmethod
    def from_files(cls, paths: tuple[Path, ...]) -> TrustedRoots:
        certs: list[x509.Certificate] = []
        for path in paths:
            if path.exists():
                certs += x509.load_pem_x509_certificates(path.read_bytes())
        return cls(tuple(certs))

    @classmethod
    def of(cls, *roots: SimulationRoot) -> TrustedRoots:
        return cls(tuple(root.cert for root in roots))

    def fingerprints(self) -> list[str]:
        return [fingerprint(cert) for cert in self.certs]

    def verify_chain(self, chain: list[x509.Certificate], now: datetime) -> x509.Certificate:
        """Checks that `chain` (leaf first) leads to a trusted root, every certificate on the
        way: each signed by the next (the last one is a trusted root or signed by one), CAs
        marked as CAs, all valid at `now`. Returns the trusted root reached."""
        if not chain:
            raise ChainInvalid("no certificate in the quote's certification data")
        if not self.certs:
            raise ChainInvalid("no simulation root is trusted (configure GREY_TEE_TRUSTED_ROOTS)")
        trusted = {cert.public_bytes(serialization.Encoding.DER) for cert in self.certs}
        for index, cert in enumerate(chain):
            _check_time(cert, now)
            if cert.public_bytes(serialization.Encoding.DER) in trusted:
                if index != len(chain) - 1:
                    raise ChainInvalid("certificates follow the trusted root in the chain")
                return cert
            if index + 1 < len(chain):
                issuer = chain[index + 1]
                if not _issued(cert, issuer):
                    raise ChainInvalid(f"'{_subject(cert)}' is not signed by the next certificate")
                if not _is_ca(issuer):
                    raise ChainInvalid(f"issuer '{_subject(issuer)}' is no CA")
                continue
            root = next((r for r in self.certs if _issued(cert, r)), None)
            if root is None:
                raise ChainInvalid(
                    f"'{_subject(cert)}' is not signed by a trusted root "
                    f"(trusted: {', '.join(self.fingerprints())})"
                )
            _check_time(root, now)
            return root
        raise AssertionError("unreachable")  # the loop returns or raises at its last certificate


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _issued(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _check_time(cert: x509.Certificate, now: datetime) -> None:
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise ChainInvalid(f"'{_subject(cert)}' is not valid at {now.isoformat()}")
