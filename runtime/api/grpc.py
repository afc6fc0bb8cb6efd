"""What the generated gRPC bindings (generated/<api>/grpc_service.py) call, as a protocol.

generated/ may only import runtime.api, so the bindings name this protocol rather than the
gateway's `GrpcDispatcher`, which satisfies it structurally.
"""

from __future__ import annotations

from typing import Protocol

import grpclib.server

from runtime.api.operation import OperationSpec

__all__ = ["GrpcCalls"]


class GrpcCalls(Protocol):
    """Answers one RPC of an operation on its grpclib stream."""

    async def unary(self, stream: grpclib.server.Stream, operation: OperationSpec) -> None:
        """One request message, one reply message."""
        ...

    async def server_stream(self, stream: grpclib.server.Stream, operation: OperationSpec) -> None:
        """One request message, a reply message per update until the stream ends."""
        ...
