"""Every gRPC listener offers server reflection, and every error carries the standard rich
status (`grpc-status-details-bin`) next to Grey's own trailing metadata."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from grpclib.client import Channel
from grpclib.reflection.v1.reflection_grpc import ServerReflectionStub
from grpclib.reflection.v1.reflection_pb2 import ServerReflectionRequest

from generated.grey.pb import grey_pb2
from runtime.gateway.contracts import CONTRACTS

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE
async def test_reflection_lists_the_services_of_the_contract(grpc_channel: Channel) -> None:
    stub = ServerReflectionStub(grpc_channel)
    async with stub.ServerReflectionInfo.open() as stream:
        await stream.send_message(ServerReflectionRequest(list_services=""), end=True)
        response = await stream.recv_message()
        assert response is not None
        names = {service.name for service in response.list_services_response.service}
        await stream.recv_trailing_metadata()
    assert {"grey.v1.GreyService", "grey.v1.AuthService"} <= names


@SQLITE
async def test_reflection_gives_the_file_of_a_service(grpc_channel: Channel) -> None:
    stub = ServerReflectionStub(grpc_channel)
    request = ServerReflectionRequest(file_containing_symbol="grey.v1.GreyService")
    async with stub.ServerReflectionInfo.open() as stream:
        await stream.send_message(request, end=True)
        response = await stream.recv_message()
        assert response is not None
        await stream.recv_trailing_metadata()
    assert response.file_descriptor_response.file_descriptor_proto


@SQLITE
async def test_an_error_carries_the_rich_status_and_grey_metadata(grpc_channel: Channel, key: str) -> None:
    target = f"{grpc_channel._host}:{grpc_channel._port}"

    def call() -> grpc.RpcError:
        with grpc.insecure_channel(target) as channel:
            method = channel.unary_unary(
                "/grey.v1.GreyService/GetTaskStatus",
                request_serializer=grey_pb2.GetTaskStatusRequest.SerializeToString,
                response_deserializer=grey_pb2.TaskStatus.FromString,
            )
            try:
                method(
                    grey_pb2.GetTaskStatusRequest(task_id="task_missing"),
                    metadata=[("authorization", f"Bearer {key}")],
                    timeout=10,
                )
            except grpc.RpcError as error:
                return error
        raise AssertionError("the call succeeded")

    error = await asyncio.to_thread(call)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    status = rpc_status.from_call(error)
    assert status is not None
    assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
    (detail,) = status.details
    info = error_details_pb2.ErrorInfo()
    assert detail.Unpack(info)
    trailers = dict(error.trailing_metadata())
    assert info.reason == trailers["grey-error-code"]
    assert info.domain == "grey"
    assert status.message == error.details()


@SQLITE
async def test_an_unauthenticated_call_names_its_code_in_the_error_info(grpc_channel: Channel) -> None:
    from grpclib.client import UnaryUnaryMethod
    from grpclib.exceptions import GRPCError

    from generated.grey.grpc.grey.v1 import GetTaskStatusRequest, TaskStatus

    method = UnaryUnaryMethod(
        grpc_channel, "/grey.v1.GreyService/GetTaskStatus", GetTaskStatusRequest, TaskStatus
    )
    with pytest.raises(GRPCError) as raised:
        await method(GetTaskStatusRequest(task_id="task_x"))
    (info,) = raised.value.details or []
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.reason == "unauthorized"


def test_every_contract_with_a_proto_offers_reflection() -> None:
    for contract in CONTRACTS.values():
        if contract.grpc_services is not None:
            assert contract.grpc_descriptor is not None, contract.name
