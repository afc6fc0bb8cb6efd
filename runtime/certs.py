"""`grey certs dev`: a local certificate authority and the certificates to try TLS with.

One CA, a server certificate for the given hosts (DNS names and IP addresses in its subject
alternative names) and a client certificate for mutual TLS on gRPC, all ECDSA P-256, as PEM
files; private keys are written 0600. For trying TLS on one machine, never for production:
the CA's key sits next to the certificates it signed.

A leaf of the import graph (cryptography only): the CLI and the tests use it, the gateway
never does (it reads the files through runtime/gateway/tls.py).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
CA_DAYS = 365 * 5
LEAF_DAYS = 365
CLIENT_NAME = "grey-dev-client"


@dataclass(frozen=True, slots=True)
class DevCerts:
    """Where `write_dev_certs` put each file."""

    ca: Path  # the CA's certificate: what clients trust, and GREY_TLS_CLIENT_CA_FILE
    ca_key: Path
    server: Path  # GREY_TLS_CERT_FILE
    server_key: Path  # GREY_TLS_KEY_FILE
    client: Path  # the gRPC client's certificate for mutual TLS
    client_key: Path

    @property
    def keys(self) -> tuple[Path, ...]:
        return (self.ca_key, self.server_key, self.client_key)

    @property
    def files(self) -> tuple[Path, ...]:
        return (self.ca, self.ca_key, self.server, self.server_key, self.client, self.client_key)


def paths(out: Path) -> DevCerts:
    return DevCerts(
        out / "ca.pem",
        out / "ca-key.pem",
        out / "server.pem",
        out / "server-key.pem",
        out / "client.pem",
        out / "client-key.pem",
    )


def write_dev_certs(
    out: Path, hosts: tuple[str, ...] = DEFAULT_HOSTS, *, overwrite: bool = False
) -> DevCerts:
    """A CA, a server certificate for `hosts` and a client certificate, written under `out`.

    FileExistsError if any of the files is there and `overwrite` is false; ValueError if
    `hosts` is empty.
    """
    if not hosts:
        raise ValueError("no host to name in the server certificate")
    target = paths(out)
    existing = [path for path in target.files if path.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(map(str, existing))} already there")
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)  # clock skew
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Grey dev CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now, CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _leaf(ca, ca_key, server_key, hosts[0], now, ExtendedKeyUsageOID.SERVER_AUTH, hosts)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _leaf(ca, ca_key, client_key, CLIENT_NAME, now, ExtendedKeyUsageOID.CLIENT_AUTH, ())
    for path, cert in ((target.ca, ca), (target.server, server), (target.client, client)):
        _write(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    for path, key in (
        (target.ca_key, ca_key),
        (target.server_key, server_key),
        (target.client_key, client_key),
    ):
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write(path, pem, 0o600)
    return target


def parse_hosts(text: str) -> tuple[str, ...]:
    """`localhost,127.0.0.1` → its names, trimmed, empty ones dropped, order kept."""
    return tuple(dict.fromkeys(host.strip() for host in text.split(",") if host.strip()))


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey, now: datetime.datetime, days: int
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _leaf(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    name: str,
    now: datetime.datetime,
    usage: x509.ObjectIdentifier,
    hosts: tuple[str, ...],
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        _builder(subject, ca.subject, key.public_key(), now, LEAF_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]), False)
    return builder.sign(ca_key, hashes.SHA256())


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return x509.DNSName(host)


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Created with `mode` (so a key is never readable by others, not even for a moment)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.chmod(path, mode)  # the umask may have taken bits a certificate should have
