"""Grey Distributed's Python gRPC example with `grpc.ssl_channel_credentials`, against a real
`grey serve` with TLS from the settings `grey certs dev` prints; and mutual TLS on gRPC, which
the Orchestrator reference asks for: no client certificate, or one of another CA, is refused
at the handshake.

Its own launcher: tests/e2e/conftest.py's `launch()` waits for plain-HTTP /health.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from typer.testing import CliRunner

from bench.serving import free_port
from runtime.certs import DevCerts, paths, write_dev_certs
from runtime.cli import app
from runtime.gateway.contracts import CONTRACTS
from tests.e2e.conftest import ROOT


@dataclass(frozen=True)
class TlsServer:
    ports: dict[str, int]  # `<api>_rest` / `<api>_grpc`
    admin_key: str
    certs: DevCerts
    banner: tuple[str, ...]

    def rest_url(self, api: str = "grey") -> str:
        return f"https://localhost:{self.ports[f'{api}_rest']}"

    def grpc_target(self, api: str = "grey") -> str:
        return f"localhost:{self.ports[f'{api}_grpc']}"


def dev_settings(out: Path) -> dict[str, str]:
    """`grey certs dev --out OUT`, and the settings it prints (`export GREY_TLS_...=...`)."""
    result = CliRunner().invoke(app, ["certs", "dev", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return dict(re.findall(r"export (GREY_TLS_\w+)=(\S+)", result.output))


def launch_tls(home: Path, certs: DevCerts, **env: str) -> tuple[subprocess.Popen[str], TlsServer]:
    """`grey serve` with every API on free ports and `env`'s TLS settings, once it answers."""
    ports = {f"{name}_{side}": free_port() for name in CONTRACTS for side in ("rest", "grpc")}
    placed = {f"GREY_{name.upper()}_PORT": str(port) for name, port in ports.items()}
    environment = {**os.environ, "GREY_HOME": str(home), "PYTHONUNBUFFERED": "1", **placed, **env}
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "serve"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    key = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if match := re.search(r"(grey_api_key_\S+)", line):
            key = match.group(1)
        if line.startswith("Broker"):
            break
    url = f"https://localhost:{ports['grey_rest']}/health"
    healthy = False
    while not healthy and key is not None and process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            healthy = httpx.get(url, verify=str(certs.ca), timeout=1).status_code == 200
        if not healthy:
            time.sleep(0.1)
    if key is None or not healthy:
        process.kill()
        lines.append(process.stdout.read())
        pytest.fail(f"grey serve with TLS did not answer {url}:\n" + "".join(lines))
    return process, TlsServer(ports, key, certs, tuple(lines))


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def certs_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("certs")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, certs_home: Path) -> Iterator[TlsServer]:
    """TLS on every listener: the two settings `grey certs dev` prints for it."""
    settings = dev_settings(certs_home)
    server_only = {k: v for k, v in settings.items() if k in ("GREY_TLS_CERT_FILE", "GREY_TLS_KEY_FILE")}
    assert len(server_only) == 2, settings
    process, running = launch_tls(tmp_path_factory.mktemp("grey-home"), paths(certs_home), **server_only)
    yield running
    stop(process)


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory: pytest.TempPathFactory, certs_home: Path) -> Iterator[TlsServer]:
    """Mutual TLS on gRPC: every setting `grey certs dev` prints (the client CA with them)."""
    settings = dev_settings(certs_home / "mutual")
    assert "GREY_TLS_CLIENT_CA_FILE" in settings, settings
    process, running = launch_tls(
        tmp_path_factory.mktemp("grey-home"), paths(certs_home / "mutual"), **settings
    )
    yield running
    stop(process)


@pytest.fixture(scope="module", autouse=True)
def stubs_on_path() -> None:
    sys.path.insert(0, str(ROOT / "generated" / "grey" / "pb"))


def test_grey_distributed_connection_setup_and_streaming_over_tls(tls_server: TlsServer) -> None:
    from grey_pb2 import StreamTaskRequest, SubmitTaskRequest
    from grey_pb2_grpc import GreyServiceStub

    api_key = tls_server.admin_key
    # Create channel with TLS (the example's; trusting the dev CA instead of the system's)
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_server.certs.ca.read_bytes())
    channel = grpc.secure_channel(tls_server.grpc_target(), credentials)

    # Add authentication
    auth_metadata = [("authorization", f"Bearer {api_key}")]
    stub = GreyServiceStub(channel)

    # Make call
    request = SubmitTaskRequest(type="stateless", payload=b'{"data": "test"}')
    response = stub.SubmitTask(request, metadata=auth_metadata)
    assert response.task_id.startswith("task_")

    # Stream task updates
    request = StreamTaskRequest(task_id=response.task_id)
    seen = [update.status for update in stub.StreamTaskStatus(request, metadata=auth_metadata, timeout=20)]
    assert seen[-1] == "completed"
    channel.close()


def test_rest_is_https_verified_against_the_dev_ca_and_plain_clients_fail(tls_server: TlsServer) -> None:
    answer = httpx.post(
        f"{tls_server.rest_url()}/v1/tasks",
        json={"type": "stateless", "payload": {"function": "echo"}},
        headers={"Authorization": f"Bearer {tls_server.admin_key}"},
        verify=str(tls_server.certs.ca),
    )
    assert answer.status_code == 201, answer.text
    with pytest.raises(httpx.TransportError):
        httpx.get(tls_server.rest_url().replace("https://", "http://") + "/health", timeout=5)
    with pytest.raises(httpx.ConnectError):  # the system's CAs do not vouch for the dev CA
        httpx.get(f"{tls_server.rest_url()}/health", timeout=5)
    with grpc.insecure_channel(tls_server.grpc_target()) as plain:  # h2c to a TLS listener
        with pytest.raises(grpc.RpcError) as refused:
            _list_services(plain)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_the_banner_says_https_and_tls(tls_server: TlsServer) -> None:
    lines = [line.rstrip("\n") for line in tls_server.banner]
    rest = rf"Grey Distributed +REST  https://127\.0\.0\.1:{tls_server.ports['grey_rest']}  TLS"
    grpc_line = rf"Grey Distributed +gRPC  127\.0\.0\.1:{tls_server.ports['grey_grpc']}  TLS"
    assert any(re.match(rest, line) for line in lines), lines
    assert any(re.match(grpc_line, line) for line in lines), lines
    listeners = [line for line in lines if "  REST  " in line or "  gRPC  " in line]
    expected = sum(2 if contract.grpc_services is not None else 1 for contract in CONTRACTS.values())
    assert len(listeners) == expected and all("  TLS" in line for line in listeners), lines


def test_mutual_tls_refuses_a_grpc_client_without_a_certificate(mtls_server: TlsServer) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=mtls_server.certs.ca.read_bytes())
    for api in ("grey", "orchestrator"):
        with grpc.secure_channel(mtls_server.grpc_target(api), credentials) as channel:
            with pytest.raises(grpc.RpcError) as refused:
                _list_services(channel)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, api
    lines = [line.rstrip("\n") for line in mtls_server.banner]
    assert any(
        line.startswith("Orchestrator") and line.endswith("mTLS  (server reflection)") for line in lines
    )


def test_mutual_tls_accepts_the_dev_client_certificate(mtls_server: TlsServer) -> None:
    from grey_pb2 import SubmitTaskRequest
    from grey_pb2_grpc import GreyServiceStub

    certs = mtls_server.certs
    credentials = grpc.ssl_channel_credentials(
        root_certificates=certs.ca.read_bytes(),
        private_key=certs.client_key.read_bytes(),
        certificate_chain=certs.client.read_bytes(),
    )
    with grpc.secure_channel(mtls_server.grpc_target(), credentials) as channel:
        stub = GreyServiceStub(channel)
        auth_metadata = [("authorization", f"Bearer {mtls_server.admin_key}")]
        response = stub.SubmitTask(SubmitTaskRequest(type="stateless", payload=b"{}"), metadata=auth_metadata)
        assert response.task_id.startswith("task_")
    with grpc.secure_channel(mtls_server.grpc_target("orchestrator"), credentials) as channel:
        assert "orchestrator.v1.OrchestratorService" in _list_services(channel)
    # REST asks for no client certificate: its callers prove themselves with keys.
    health = httpx.get(f"{mtls_server.rest_url()}/health", verify=str(certs.ca), timeout=5)
    assert health.status_code == 200


def test_mutual_tls_refuses_a_client_certificate_of_another_ca(
    mtls_server: TlsServer, tmp_path: Path
) -> None:
    attacker = write_dev_certs(tmp_path / "attacker")  # a CA of their own, a client cert it signed
    credentials = grpc.ssl_channel_credentials(
        root_certificates=mtls_server.certs.ca.read_bytes(),
        private_key=attacker.client_key.read_bytes(),
        certificate_chain=attacker.client.read_bytes(),
    )
    with grpc.secure_channel(mtls_server.grpc_target(), credentials) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            _list_services(channel)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def _list_services(channel: grpc.Channel) -> set[str]:
    """Server reflection's list of services: a call every gRPC listener answers."""
    from grpclib.reflection.v1.reflection_pb2 import ServerReflectionRequest, ServerReflectionResponse

    method = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=ServerReflectionRequest.SerializeToString,
        response_deserializer=ServerReflectionResponse.FromString,
    )
    (response,) = list(method(iter([ServerReflectionRequest(list_services="")]), timeout=10))
    return {service.name for service in response.list_services_response.service}
