"""The grpclib server of one API: its generated service bindings, server reflection, and the
rich error status (`grpc-status-details-bin`) on every failure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.reflection.service import ServerReflection
from grpclib.server import Server

from runtime.gateway.dispatch import Dispatcher
from runtime.gateway.grpc.dispatch import GrpcDispatcher


def build_grpc_server(dispatchers: Dispatcher | Sequence[Dispatcher]) -> Server:
    """Serves the contracts' services and reflection (v1 and v1alpha) over their descriptors.

    Several APIs may share one server (one port): gRPC method paths carry the proto
    package (`/openmcp.chain.v1.TaskService/...`), so they never collide.
    """
    services: list[Any] = []
    for dispatcher in [dispatchers] if isinstance(dispatchers, Dispatcher) else dispatchers:
        contract = dispatcher.contract
        if contract.grpc_services is None:
            raise ValueError(f"{contract.name} has no gRPC side (no proto under spec/{contract.name}/proto/)")
        services += contract.grpc_services(GrpcDispatcher(dispatcher))
    return Server(ServerReflection.extend(services), status_details_codec=ProtoStatusDetailsCodec())
