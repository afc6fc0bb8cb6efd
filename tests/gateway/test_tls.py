"""Transport security: with a certificate and key in the settings every listener serves TLS
(REST over HTTPS, gRPC over TLS), and with a client CA the gRPC listeners want a client
certificate that CA signed. `Platform.serve` runs here in-process, on free ports, with the
files `grey certs dev` makes (runtime/certs.py)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from grpclib.client import Channel
from grpclib.exceptions import StreamTerminatedError

import runtime.gateway.app as gateway_app
from bench.serving import free_port
from runtime.certs import DevCerts, write_dev_certs
from runtime.gateway.app import Platform, serve
from runtime.gateway.contracts import CONTRACTS
from runtime.gateway.tls import TlsError, server_tls
from runtime.services import Services
from runtime.settings import Settings
from tests.support.platform import make_key
from tests.support.transports import GrpcCaller

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> DevCerts:
    return write_dev_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> DevCerts:
    """Another CA's certificates: what an attacker can make."""
    return write_dev_certs(tmp_path_factory.mktemp("stranger"))


def tls_settings(dev: DevCerts, tmp_path: Path, *, mutual: bool = False) -> Settings:
    ports = {f"{name}_{side}": free_port() for name in CONTRACTS for side in ("rest", "grpc")}
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'grey.db'}",
        worker_threads=0,
        shutdown_grace_seconds=2,
        api_ports=ports,
        tls_cert_file=dev.server,
        tls_key_file=dev.server_key,
        tls_client_ca_file=dev.ca if mutual else None,
    )


def client_context(dev: DevCerts, alpn: str, cert: DevCerts | None = None) -> ssl.SSLContext:
    """Trusts the dev CA only; presents `cert`'s client certificate if given."""
    context = ssl.create_default_context(cafile=str(dev.ca))
    context.set_alpn_protocols([alpn])
    if cert is not None:
        context.load_cert_chain(str(cert.client), str(cert.client_key))
    return context


@contextlib.asynccontextmanager
async def serving(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Platform]:
    """`Platform.serve` as `grey serve` runs it, stopped the way a signal stops it."""
    servers: list[Any] = []

    class Recorded(gateway_app._GatewayServer):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            servers.append(self)

    monkeypatch.setattr(gateway_app, "_GatewayServer", Recorded)
    services = Services.open(settings)
    platform = Platform.build(services)
    running = asyncio.ensure_future(platform.serve())
    try:
        while not (servers and servers[0].started):
            assert not running.done(), running.exception()
            await asyncio.sleep(0.01)
        yield platform
    finally:
        if servers:
            servers[0].should_exit = True
        await asyncio.wait_for(running, 10)
        services.close()


def test_without_tls_settings_nothing_changes(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'grey.db'}")
    assert server_tls(settings) is None
    services = Services.open(settings)
    try:
        lines = [listener.line() for listener in Platform.build(services, [CONTRACTS["grey"]]).listeners()]
    finally:
        services.close()
    assert "Grey Distributed  REST  http://127.0.0.1:8080" in lines
    assert "Grey Distributed  gRPC  127.0.0.1:4100" in lines


def test_the_settings_read_the_tls_keys(monkeypatch: pytest.MonkeyPatch, dev: DevCerts) -> None:
    monkeypatch.setenv("GREY_TLS_CERT_FILE", str(dev.server))
    monkeypatch.setenv("GREY_TLS_KEY_FILE", str(dev.server_key))
    monkeypatch.setenv("GREY_TLS_CLIENT_CA_FILE", str(dev.ca))
    monkeypatch.setenv("GREY_TLS_CLIENT_CERT", "Optional")
    settings = Settings.from_env()
    assert (settings.tls_cert_file, settings.tls_key_file) == (dev.server, dev.server_key)
    assert (settings.tls_client_ca_file, settings.tls_client_cert) == (dev.ca, "optional")
    made = server_tls(settings)
    assert made is not None and made.mutual
    assert made.grpc.verify_mode == ssl.CERT_OPTIONAL
    assert made.rest.verify_mode == ssl.CERT_NONE  # REST callers prove themselves with keys


def test_only_the_configured_ca_vouches_for_grpc_clients(dev: DevCerts, tmp_path: Path) -> None:
    """No system CA is loaded for clients: a public CA's client certificate opens nothing."""
    made = server_tls(tls_settings(dev, tmp_path, mutual=True))
    assert made is not None and made.grpc.verify_mode == ssl.CERT_REQUIRED
    (only,) = made.grpc.get_ca_certs()
    assert only["subject"] == ((("commonName", "Grey dev CA"),),)
    assert made.rest.get_ca_certs() == []


def test_settings_that_make_no_tls_server_are_refused_before_anything_opens(
    dev: DevCerts, stranger: DevCerts, tmp_path: Path
) -> None:
    base = tls_settings(dev, tmp_path, mutual=True)
    encrypted = tmp_path / "encrypted-key.pem"
    key = serialization.load_pem_private_key(dev.server_key.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    wrong = {
        "need GREY_TLS_CERT_FILE": replace(base, tls_cert_file=None),
        "GREY_TLS_KEY_FILE: no file": replace(base, tls_key_file=tmp_path / "missing.pem"),
        "not a PEM certificate chain": replace(base, tls_key_file=stranger.server_key),  # not its key
        "encrypted": replace(base, tls_key_file=encrypted),
        "not a PEM CA bundle": replace(base, tls_client_ca_file=dev.server_key),
        "use required or optional": replace(base, tls_client_cert="sometimes"),
    }
    for message, settings in wrong.items():
        with pytest.raises(TlsError, match=message):
            server_tls(settings)
    with pytest.raises(SystemExit, match="grey serve: GREY_TLS_KEY_FILE: no file"):
        serve(wrong["GREY_TLS_KEY_FILE: no file"])


async def test_every_rest_listener_speaks_https_and_refuses_plain_http(
    dev: DevCerts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tls_settings(dev, tmp_path)
    async with serving(settings, monkeypatch) as platform:
        services = platform.services
        listeners = platform.listeners()
        rest = [listener for listener in listeners if listener.transport == "REST"]
        assert len(rest) == len(CONTRACTS)
        for listener in listeners:
            assert listener.line().endswith("  TLS"), listener.line()
        key = make_key(services, "acme")
        verify = client_context(dev, "http/1.1")
        async with httpx.AsyncClient(verify=verify, timeout=10) as client:
            for listener in rest:
                assert listener.line().split()[-2].startswith(f"https://{HOST}:{listener.port}")
                answer = await client.get(f"https://localhost:{listener.port}/health")
                # An answer of the API's at all is the point (not every API has /health).
                assert answer.status_code in (200, 404), (listener.api, answer.text)
            grey = settings.api_ports["grey_rest"]
            submitted = await client.post(
                f"https://localhost:{grey}/v1/tasks",
                json={"type": "stateless", "payload": {"function": "echo"}},
                headers={"X-API-Key": key},
            )
            assert submitted.status_code == 201, submitted.text
            with pytest.raises(httpx.TransportError):
                await client.get(f"http://localhost:{grey}/health")
        async with httpx.AsyncClient(timeout=10) as unverified:  # the system's CAs only
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await unverified.get(f"https://localhost:{grey}/health")


async def test_grpc_speaks_tls_with_alpn_h2(
    dev: DevCerts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tls_settings(dev, tmp_path)
    async with serving(settings, monkeypatch) as platform:
        key = make_key(platform.services, "acme")
        channel = Channel("localhost", settings.api_ports["grey_grpc"], ssl=client_context(dev, "h2"))
        try:
            outcome = await GrpcCaller(channel)(
                "submitTask", key, type="stateless", payload={"function": "echo"}
            )
        finally:
            channel.close()
        assert outcome.status == 0 and outcome.data["task_id"].startswith("task_"), outcome
        plain = Channel(HOST, settings.api_ports["grey_grpc"])  # h2c to a TLS port
        try:
            with pytest.raises((StreamTerminatedError, ConnectionError)):
                await asyncio.wait_for(GrpcCaller(plain)("listTasks", key), 5)
        finally:
            plain.close()


async def test_mutual_tls_wants_a_client_certificate_from_the_configured_ca(
    dev: DevCerts, stranger: DevCerts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tls_settings(dev, tmp_path, mutual=True)
    async with serving(settings, monkeypatch) as platform:
        key = make_key(platform.services, "acme")
        lines = [listener.line() for listener in platform.listeners()]
        assert all(line.endswith("  mTLS") for line in lines if "  gRPC  " in line), lines
        assert all(line.endswith("  TLS") for line in lines if "  REST  " in line), lines
        for api in ("grey", "orchestrator"):
            port = settings.api_ports[f"{api}_grpc"]
            for refused in (None, stranger):
                channel = Channel("localhost", port, ssl=client_context(dev, "h2", refused))
                try:
                    with pytest.raises((StreamTerminatedError, ssl.SSLError)):
                        await asyncio.wait_for(GrpcCaller(channel)("listTasks", key), 5)
                finally:
                    channel.close()
        port = settings.api_ports["grey_grpc"]
        channel = Channel("localhost", port, ssl=client_context(dev, "h2", dev))
        try:
            outcome = await GrpcCaller(channel)("listTasks", key)
        finally:
            channel.close()
        assert outcome.status == 0, outcome
        # REST stays server-authenticated: no client certificate asked for.
        async with httpx.AsyncClient(verify=client_context(dev, "http/1.1"), timeout=10) as client:
            health = await client.get(f"https://localhost:{settings.api_ports['grey_rest']}/health")
            assert health.status_code == 200
