"""Calling one operation over REST or gRPC with the same arguments, for transport-parity tests.

Both callers return an `Outcome`: the success body as a plain dict, or the error code the
transport carried (envelope `error.code` for REST, `grey-error-code` trailer for gRPC).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import betterproto2
import httpx
from grpclib.client import Channel
from grpclib.const import Cardinality
from grpclib.exceptions import GRPCError

from generated.grey.grpc_service import RPC_MESSAGES
from generated.grey.operations import OPERATIONS


@dataclass(frozen=True, slots=True)
class Outcome:
    data: dict[str, Any] = field(default_factory=dict)  # empty when `code` is set
    code: str | None = None
    status: int | None = None  # HTTP status, or the gRPC status value

    @property
    def ok(self) -> bool:
        return self.code is None


class RestCaller:
    name = "rest"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def __call__(self, operation_id: str, key: str | None, **arguments: Any) -> Outcome:
        operation = OPERATIONS[operation_id]
        path = operation.path
        for name in operation.path_params:
            path = path.replace("{" + name + "}", str(arguments.pop(name)))
        query = {name: arguments.pop(name) for name in operation.query_params if name in arguments}
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        body = arguments if operation.has_body and arguments else None
        response = await self.client.request(operation.method, path, params=query, json=body, headers=headers)
        if response.status_code >= 400:
            return Outcome(code=response.json()["error"]["code"], status=response.status_code)
        data = response.json() if response.content else {}
        return Outcome(data=data, status=response.status_code)


class GrpcCaller:
    name = "grpc"

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    async def __call__(self, operation_id: str, key: str | None, **arguments: Any) -> Outcome:
        operation = OPERATIONS[operation_id]
        assert operation.grpc, f"{operation_id} has no gRPC method"
        service, method = operation.grpc.split(".")
        request_type, response_type = _types(service, method)
        if operation_id == "submitTask" and "payload" in arguments:
            arguments["payload"] = base64.b64encode(json.dumps(arguments["payload"]).encode()).decode()
        request = request_type.from_dict(arguments) if arguments else request_type()
        metadata = {"authorization": f"Bearer {key}"} if key else {}
        try:
            async with self.channel.request(
                f"/grey.v1.{service}/{method}",
                Cardinality.UNARY_UNARY,
                request_type,
                response_type,
                metadata=metadata,
                timeout=10,
            ) as stream:
                await stream.send_message(request, end=True)
                reply = await stream.recv_message()
                await stream.recv_trailing_metadata()
        except GRPCError as error:
            trailers: dict[str, Any] = dict(stream.trailing_metadata or {})
            code = str(trailers.get("grey-error-code", ""))
            return Outcome(code=code or error.status.name, status=error.status.value)
        assert reply is not None
        return Outcome(data=reply.to_dict(casing=betterproto2.Casing.SNAKE), status=0)


def _types(service: str, method: str) -> tuple[type[betterproto2.Message], type[betterproto2.Message]]:
    return RPC_MESSAGES[f"{service}.{method}"]
