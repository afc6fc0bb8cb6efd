"""Transport security of `grey serve`: the server's TLS contexts, from the settings.

With `GREY_TLS_CERT_FILE` (and `GREY_TLS_KEY_FILE`) every listener serves TLS: REST over
HTTPS (ALPN `http/1.1`, what uvicorn speaks), gRPC over TLS with ALPN `h2` (grpcio clients
require it). `GREY_TLS_CLIENT_CA_FILE` adds mutual TLS on the gRPC listeners: a client must
present a certificate issued by a CA of that bundle, and only of that bundle (the system's
CAs are never loaded for clients), or the handshake fails. REST stays server-authenticated:
its callers prove who they are with API keys and tokens. Without a certificate nothing
changes: plain HTTP and h2c.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from runtime.settings import Settings

#: AEAD suites with forward secrecy only (TLS 1.2; TLS 1.3 suites are all of this kind).
#: HTTP/2 forbids the rest (RFC 9113 §9.2.2), so gRPC clients would refuse them anyway.
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
CLIENT_CERT_MODES = ("required", "optional")


class TlsError(ValueError):
    """The settings name files that do not make a TLS server (missing, unreadable, mismatched)."""


@dataclass(frozen=True, slots=True)
class ServerTls:
    """The contexts of the listeners: one for REST, one for gRPC (ALPN and client certs differ)."""

    rest: ssl.SSLContext
    grpc: ssl.SSLContext
    mutual: bool  # gRPC clients are asked for a certificate (required or optional)


def mode(settings: Settings, transport: str) -> str:
    """What `grey serve` prints of a listener's security: "" (plain), "TLS" or "mTLS"."""
    if settings.tls_cert_file is None:
        return ""
    if transport == "gRPC" and settings.tls_client_ca_file is not None:
        return "mTLS" if settings.tls_client_cert == "required" else "mTLS (client certificate optional)"
    return "TLS"


def server_tls(settings: Settings) -> ServerTls | None:
    """The listeners' contexts, or None without a certificate; TlsError names what is wrong."""
    cert, key, client_ca = settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
    if cert is None:
        named = [
            var
            for var, value in (("GREY_TLS_KEY_FILE", key), ("GREY_TLS_CLIENT_CA_FILE", client_ca))
            if value
        ]
        if named:
            raise TlsError(f"{' and '.join(named)} need GREY_TLS_CERT_FILE (the server's certificate chain)")
        return None
    if settings.tls_client_cert not in CLIENT_CERT_MODES:
        raise TlsError(f"GREY_TLS_CLIENT_CERT is {settings.tls_client_cert!r}: use required or optional")
    for var, path in (
        ("GREY_TLS_CERT_FILE", cert),
        ("GREY_TLS_KEY_FILE", key),
        ("GREY_TLS_CLIENT_CA_FILE", client_ca),
    ):
        if path is not None and not path.is_file():
            raise TlsError(f"{var}: no file {path}")
    rest = _context(cert, key, ["http/1.1"])
    grpc = _context(cert, key, ["h2"])
    if client_ca is not None:
        try:
            grpc.load_verify_locations(cafile=str(client_ca))
        except (ssl.SSLError, OSError) as error:
            raise TlsError(f"GREY_TLS_CLIENT_CA_FILE {client_ca}: not a PEM CA bundle ({error})") from None
        grpc.verify_mode = ssl.CERT_REQUIRED if settings.tls_client_cert == "required" else ssl.CERT_OPTIONAL
    return ServerTls(rest, grpc, client_ca is not None)


def _context(cert: Path, key: Path | None, alpn: list[str]) -> ssl.SSLContext:
    # A bare server context: create_default_context(CLIENT_AUTH) would load the system's CAs,
    # and with them trust every public CA's client certificates.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CIPHERS)
    context.set_alpn_protocols(alpn)
    try:
        context.load_cert_chain(str(cert), str(key) if key is not None else None, password=_no_password)
    except (ssl.SSLError, OSError, TlsError) as error:
        where = f"GREY_TLS_CERT_FILE {cert}" + (f" / GREY_TLS_KEY_FILE {key}" if key is not None else "")
        raise TlsError(
            f"{where}: not a PEM certificate chain and its unencrypted private key ({error})"
        ) from None
    return context


def _no_password() -> bytes:
    """An encrypted key fails here rather than prompting on the terminal."""
    raise TlsError("the private key is encrypted")
