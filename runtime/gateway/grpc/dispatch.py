"""gRPC side of the dispatcher: metadata credentials, message conversion, status mapping."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpclib.server
from google.rpc.error_details_pb2 import ErrorInfo
from grpclib.exceptions import GRPCError

from runtime.api.errors import ApiError
from runtime.api.operation import OperationSpec
from runtime.gateway.dispatch import Dispatcher, request_id_or_new
from runtime.gateway.errors import as_api_error
from runtime.gateway.grpc.convert import Conversion
from runtime.gateway.input_limits import MAX_DEPTH, input_problem

logger = logging.getLogger("grey.grpc")

ERROR_CODE_KEY = "grey-error-code"
ERROR_DETAILS_KEY = "grey-error-details"


def credential_from_metadata(metadata: Any) -> str | None:
    value = metadata.get("authorization") if metadata else None
    if value:
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else value.strip()
    return metadata.get("x-api-key") if metadata else None


def _peer(stream: grpclib.server.Stream) -> str:
    """The peer's IP address, as REST's `client_of` gives it."""
    address = stream.peer.addr()
    return str(address[0]) if address else ""


def _request_id(stream: grpclib.server.Stream) -> str:
    given = stream.metadata.get("x-request-id") if stream.metadata else None
    return request_id_or_new(given if isinstance(given, str) else None)


class GrpcDispatcher:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        conversion = dispatcher.contract.conversion
        if conversion is None:
            raise ValueError(f"{dispatcher.contract.name} has no gRPC side (no proto)")
        self.conversion: Conversion = conversion

    async def _prepare(self, stream: grpclib.server.Stream, operation: OperationSpec) -> tuple[Any, Any, Any]:
        try:
            message = await stream.recv_message()
        except (UnicodeDecodeError, ValueError) as error:  # bytes no conforming client sends
            raise ApiError("bad_request", f"The request message could not be decoded: {error}") from None
        except RecursionError:  # messages (a google.protobuf.Struct) nested past the parser's stack
            raise ApiError(
                "bad_request", f"The request message is nested deeper than {MAX_DEPTH} levels"
            ) from None
        if message is None:  # the client closed its side without sending the request
            raise ApiError(operation.input_error_code, "No request message was sent")
        client = _peer(stream)
        principal, _ = await self.dispatcher.admit(
            operation, credential_from_metadata(stream.metadata), client
        )
        raw = self.conversion.message_to_input(operation, message)
        hostile = input_problem(raw)
        if hostile is not None:
            field, reason = hostile
            raise ApiError(operation.input_error_code, f"{field} {reason}", {"field": field})
        request = self.dispatcher.parse_input(operation, raw)
        request_id = _request_id(stream)
        ctx = self.dispatcher.context(principal, request_id, "grpc", client)
        return request, ctx, self.dispatcher.handler(operation)

    async def unary(self, stream: grpclib.server.Stream, operation: OperationSpec) -> None:
        async def answer() -> None:
            request, ctx, handler = await self._prepare(stream, operation)
            reply = self.conversion.model_to_message(operation, await handler(request, ctx))
            await stream.send_message(reply)

        await self._observed(stream, operation, answer)

    async def server_stream(self, stream: grpclib.server.Stream, operation: OperationSpec) -> None:
        async def answer() -> None:
            request, ctx, handler = await self._prepare(stream, operation)
            async for update in handler(request, ctx):
                await stream.send_message(self.conversion.model_to_message(operation, update))

        await self._observed(stream, operation, answer)

    async def _observed(
        self, stream: grpclib.server.Stream, operation: OperationSpec, answer: Callable[[], Awaitable[None]]
    ) -> None:
        """Runs the call; any failure becomes its status and code; every call is counted."""
        began = time.perf_counter()
        outcome = "ok"
        try:
            await answer()
        except GRPCError:
            outcome = "grpc_error"
            raise
        except Exception as error:
            failure = as_api_error(error)
            outcome = failure.code
            await self._fail(stream, failure)
        finally:
            metrics = self.dispatcher.services.metrics
            metrics.observe(
                self.dispatcher.contract.name,
                operation.operation_id,
                "grpc",
                outcome,
                time.perf_counter() - began,
            )

    async def _fail(self, stream: grpclib.server.Stream, error: ApiError) -> None:
        """The canonical status; the standard rich status (`grpc-status-details-bin`: a
        google.rpc.Status whose details are an ErrorInfo naming the API's error code, plus the
        API's own error message where its proto declares one); and the code and details in
        Grey's own trailing metadata. The code is the API's word for the error."""
        contract = self.dispatcher.contract
        code = contract.public_code(error.code)
        details: list[Any] = [error_info(contract.name, code, error)]
        if contract.grpc_error_detail is not None:
            details.append(contract.grpc_error_detail(code, error.message))
        await stream.send_trailing_metadata(
            status=error.kind.grpc_status,
            status_message=error.message,
            status_details=details,
            metadata={ERROR_CODE_KEY: code, ERROR_DETAILS_KEY: json.dumps(error.details)},
        )


def error_info(domain: str, code: str, error: ApiError) -> ErrorInfo:
    """reason: the API's error code; metadata: the envelope's details (non-strings as JSON)."""
    metadata = {
        str(name): value if isinstance(value, str) else json.dumps(value, default=str)
        for name, value in (error.details or {}).items()
    }
    return ErrorInfo(reason=code, domain=domain, metadata=metadata)
