"""`grey serve` prints one line per listener, naming the API, the transport and the address,
and serves reflection on the gRPC one."""

from __future__ import annotations

import grpc

from tests.e2e.conftest import Server


def test_one_line_per_listener_names_the_api_transport_and_address(server: Server) -> None:
    lines = [line.rstrip("\n") for line in server.banner]
    assert any(line.startswith(f"Grey Distributed  REST  {server.rest_url}") for line in lines), lines
    grpc_line = f"Grey Distributed  gRPC  127.0.0.1:{server.grpc_port}"
    assert any(line.startswith(grpc_line) for line in lines), lines


def test_the_grpc_listener_answers_reflection(server: Server) -> None:
    from grpclib.reflection.v1.reflection_pb2 import ServerReflectionRequest, ServerReflectionResponse

    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        method = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=ServerReflectionRequest.SerializeToString,
            response_deserializer=ServerReflectionResponse.FromString,
        )
        (response,) = list(method(iter([ServerReflectionRequest(list_services="")]), timeout=10))
    names = {service.name for service in response.list_services_response.service}
    assert {"grey.v1.GreyService", "grey.v1.AuthService"} <= names
