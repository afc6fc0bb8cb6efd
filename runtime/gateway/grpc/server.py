"""The grpclib server hosting every generated service binding."""

from __future__ import annotations

from grpclib.server import Server

from generated.grey.grpc_service import AuthServiceBinding, GreyServiceBinding
from runtime.gateway.dispatch import Dispatcher
from runtime.gateway.grpc.dispatch import GrpcDispatcher


def build_grpc_server(dispatcher: Dispatcher) -> Server:
    grpc_dispatcher = GrpcDispatcher(dispatcher)
    return Server([GreyServiceBinding(grpc_dispatcher), AuthServiceBinding(grpc_dispatcher)])
