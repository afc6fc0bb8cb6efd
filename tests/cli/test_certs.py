"""`grey certs dev` makes a local CA, a server certificate for the hosts and a client
certificate; its keys are 0600, the settings it prints load, and the certificates pass a
strict handshake (the checks Python 3.13 clients make by default)."""

from __future__ import annotations

import ipaddress
import re
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from typer.testing import CliRunner

from runtime.certs import DevCerts, paths, write_dev_certs
from runtime.cli import app
from runtime.gateway.tls import server_tls
from runtime.settings import Settings


def make(out: Path, *extra: str) -> tuple[str, dict[str, str]]:
    result = CliRunner().invoke(app, ["certs", "dev", "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result.output, dict(re.findall(r"export (GREY_TLS_\w+)=(\S+)", result.output))


def test_certs_dev_writes_a_ca_server_and_client_with_private_keys_0600(tmp_path: Path) -> None:
    out, settings = make(tmp_path / "certs", "--hosts", "localhost, 127.0.0.1,grey.internal")
    made = paths(tmp_path / "certs")
    for key in made.keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    for public in (made.ca, made.server, made.client):
        assert stat.S_IMODE(public.stat().st_mode) == 0o644, public
    assert settings == {
        "GREY_TLS_CERT_FILE": str(made.server),
        "GREY_TLS_KEY_FILE": str(made.server_key),
        "GREY_TLS_CLIENT_CA_FILE": str(made.ca),
    }
    assert "ssl_channel_credentials" in out

    ca = x509.load_pem_x509_certificate(made.ca.read_bytes())
    server = x509.load_pem_x509_certificate(made.server.read_bytes())
    client = x509.load_pem_x509_certificate(made.client.read_bytes())
    server.verify_directly_issued_by(ca)
    client.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "grey.internal"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usage = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    for cert, key in ((server, made.server_key), (client, made.client_key)):
        private = serialization.load_pem_private_key(key.read_bytes(), None)
        assert private.public_key() == cert.public_key()

    # The settings it printed make a TLS server with mutual TLS on gRPC.
    loaded = server_tls(
        Settings(
            tls_cert_file=Path(settings["GREY_TLS_CERT_FILE"]),
            tls_key_file=Path(settings["GREY_TLS_KEY_FILE"]),
            tls_client_ca_file=Path(settings["GREY_TLS_CLIENT_CA_FILE"]),
        )
    )
    assert loaded is not None and loaded.mutual


def test_the_certificates_pass_a_strict_mutual_handshake(tmp_path: Path) -> None:
    made = write_dev_certs(tmp_path)
    server = server_tls(
        Settings(tls_cert_file=made.server, tls_key_file=made.server_key, tls_client_ca_file=made.ca)
    )
    assert server is not None
    for host in ("localhost", "127.0.0.1", "::1"):
        client = _strict_client(made)
        assert _handshake(client, server.grpc, host) == "h2"
    client = _strict_client(made)
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(client, server.grpc, "grey.example.com")  # not among the hosts


def test_certs_dev_keeps_files_unless_forced_and_defaults_under_grey_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GREY_HOME", str(tmp_path / "home"))
    assert CliRunner().invoke(app, ["certs", "dev"]).exit_code == 0
    made = paths(tmp_path / "home" / "certs")
    first = made.ca.read_bytes()
    again = CliRunner().invoke(app, ["certs", "dev"])
    assert again.exit_code == 1 and "--force" in again.output
    assert made.ca.read_bytes() == first
    assert CliRunner().invoke(app, ["certs", "dev", "--force"]).exit_code == 0
    assert made.ca.read_bytes() != first
    assert stat.S_IMODE(made.ca_key.stat().st_mode) == 0o600
    empty = CliRunner().invoke(app, ["certs", "dev", "--out", str(tmp_path / "x"), "--hosts", " , "])
    assert empty.exit_code == 2


def _strict_client(made: DevCerts) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(made.ca))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.set_alpn_protocols(["h2"])
    context.load_cert_chain(str(made.client), str(made.client_key))
    return context


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext, host: str) -> str | None:
    """A TLS handshake in memory; the ALPN protocol chosen once both sides verified the other."""
    to_client, to_server = ssl.MemoryBIO(), ssl.MemoryBIO()
    near = client.wrap_bio(to_client, to_server, server_hostname=host)
    far = server.wrap_bio(to_server, to_client, server_side=True)
    done = {"near": False, "far": False}
    for _ in range(10):
        for name, side in (("near", near), ("far", far)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
    assert all(done.values()), done
    peer = far.getpeercert()
    assert peer is not None and peer["subject"] == ((("commonName", "grey-dev-client"),),)
    return near.selected_alpn_protocol()
