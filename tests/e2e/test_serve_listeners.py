"""`grey serve` prints one line per listener, naming the API, the transport and the address,
and every gRPC listener serves reflection (what `grpcurl -plaintext HOST:PORT list` asks)
with exactly its own API's services."""

from __future__ import annotations

import re

import grpc
import pytest
from grpclib.reflection.v1.reflection_pb2 import ServerReflectionRequest, ServerReflectionResponse

from runtime.gateway.contracts import CONTRACTS
from tests.e2e.conftest import Server

REFLECTION = "grpc.reflection."  # the reflection services themselves (v1, v1alpha)
WITH_GRPC = [name for name, contract in CONTRACTS.items() if contract.grpc_services is not None]


def test_one_line_per_listener_names_the_api_transport_and_address(server: Server) -> None:
    lines = [line.rstrip("\n") for line in server.banner]
    rest_line = rf"Grey Distributed +REST  {re.escape(server.rest_url)}"
    assert any(re.match(rest_line, line) for line in lines), lines
    grpc_line = rf"Grey Distributed +gRPC  127\.0\.0\.1:{server.grpc_port}"
    assert any(re.match(grpc_line, line) for line in lines), lines


def test_every_api_has_a_line_per_listener(server: Server) -> None:
    listener_lines = [line for line in server.banner if re.search(r"  (REST|gRPC)  ", line)]
    expected = []
    for name, contract in CONTRACTS.items():
        rest, grpc_port = server.ports[name]
        expected.append(rf"{re.escape(contract.title)} +REST  http://127\.0\.0\.1:{rest}  ")
        if grpc_port is not None:
            expected.append(rf"{re.escape(contract.title)} +gRPC  127\.0\.0\.1:{grpc_port}  ")
    assert len(expected) == 10  # 3 APIs on REST and gRPC; CloudAI and gswarm's three on REST only
    assert len(listener_lines) == len(expected), listener_lines
    for line, pattern in zip(listener_lines, expected, strict=True):
        assert re.match(pattern, line), (pattern, line)
    # The titles are padded to one width, so the transports line up.
    assert len({line.index("  REST  " if "  REST  " in line else "  gRPC  ") for line in listener_lines}) == 1


def _reflect(target: str, request: ServerReflectionRequest) -> ServerReflectionResponse:
    with grpc.insecure_channel(target) as channel:
        method = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=ServerReflectionRequest.SerializeToString,
            response_deserializer=ServerReflectionResponse.FromString,
        )
        (response,) = list(method(iter([request]), timeout=10))
    return response


def test_the_grpc_listener_answers_reflection(server: Server) -> None:
    response = _reflect(f"127.0.0.1:{server.grpc_port}", ServerReflectionRequest(list_services=""))
    names = {service.name for service in response.list_services_response.service}
    assert {"grey.v1.GreyService", "grey.v1.AuthService"} <= names


@pytest.mark.parametrize("api", WITH_GRPC)
def test_every_grpc_listener_lists_its_own_services_and_describes_them(server: Server, api: str) -> None:
    descriptor = CONTRACTS[api].grpc_descriptor
    own = {service.full_name for service in descriptor.services_by_name.values()}
    response = _reflect(server.grpc(api), ServerReflectionRequest(list_services=""))
    names = {service.name for service in response.list_services_response.service}
    assert {name for name in names if not name.startswith(REFLECTION)} == own
    for name in own:  # what `grpcurl describe` asks next
        found = _reflect(server.grpc(api), ServerReflectionRequest(file_containing_symbol=name))
        assert found.file_descriptor_response.file_descriptor_proto, name
