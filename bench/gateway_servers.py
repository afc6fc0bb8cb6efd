"""The four servers `make bench-gateway` compares, each run as its own process.

`grey-rest` / `grey-grpc` are the real gateway (connexion routing, compiled validation,
auth, rate limit, handler). `bare-rest` / `bare-grpc` do the same work by hand on bare
Starlette and a bare grpclib handler: the same credential check, rate-limit hit, input
model, handler (store insert and enqueue) and JSON, without the framework around them.

Usage: python -m bench.gateway_servers KIND PORT DATABASE_URL KEY_FILE
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import grpclib.const
import grpclib.server
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.serving import UNLIMITED, bench_key, serve_rest
from generated.grey import models
from generated.grey.grpc.grey.v1 import SubmitTaskRequest, SubmitTaskResponse
from handlers.grey.cluster import get_cluster_health
from handlers.grey.tasks import submit_task
from runtime.api.context import Principal, RequestContext
from runtime.api.errors import ApiError
from runtime.gateway.app import Platform
from runtime.gateway.errors import as_api_error
from runtime.services import Services
from runtime.settings import Settings


def open_services(database_url: str) -> Services:
    return Services.open(Settings(database_url=database_url), UNLIMITED)


async def _principal(services: Services, credential: str | None, scope: str) -> Principal:
    if not credential:
        raise ApiError("unauthorized", "Missing API key or bearer token")
    principal = services.auth.cached(credential)
    if principal is None:
        principal = await services.blocking.run(services.auth.authenticate, credential)
    if scope not in principal.scopes:
        raise ApiError("forbidden", f"needs {scope}")
    return principal


def bare_rest_app(services: Services) -> Starlette:
    def credential(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        return header[7:] if header.startswith("Bearer ") else request.headers.get("x-api-key")

    def error(failure: ApiError) -> JSONResponse:
        return JSONResponse(failure.envelope("req_bare"), failure.kind.http_status)

    async def submit(request: Request) -> Response:
        try:
            principal = await _principal(services, credential(request), "tasks:write")
            window = services.limiter.hit(principal.tenant_id, "submit")
            body = json.loads(await request.body())
            task_input = models.SubmitTaskInput.model_validate(body)
            ctx = RequestContext(f"req_{uuid.uuid4()}", principal, services, "rest")
            result = await submit_task(task_input, ctx)
        except Exception as failure:  # the gateway's own mapping, as in the full app
            return error(as_api_error(failure))
        assert window is not None  # UNLIMITED gives every bucket a (huge) limit
        return Response(result.model_dump_json(exclude_none=True), 201, window.headers(), "application/json")

    async def health(request: Request) -> Response:
        try:
            principal = await _principal(services, credential(request), "cluster:read")
            window = services.limiter.hit(principal.tenant_id, "cluster")
            ctx = RequestContext(f"req_{uuid.uuid4()}", principal, services, "rest")
            result = await get_cluster_health(models.GetClusterHealthInput(), ctx)
        except Exception as failure:  # the gateway's own mapping, as in the full app
            return error(as_api_error(failure))
        assert window is not None  # UNLIMITED gives every bucket a (huge) limit
        return Response(result.model_dump_json(exclude_none=True), 200, window.headers(), "application/json")

    return Starlette(
        routes=[
            Route("/v1/tasks", submit, methods=["POST"]),
            Route("/v1/cluster/health", health, methods=["GET"]),
        ]
    )


class BareSubmit:
    """A grpclib service with one hand-written SubmitTask doing the gateway's work."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def submit(self, stream: grpclib.server.Stream) -> None:
        message = await stream.recv_message()
        assert message is not None
        value = stream.metadata.get("authorization", "") if stream.metadata else ""
        assert isinstance(value, str)  # grpclib gives bytes only for "-bin" keys
        principal = await _principal(self.services, value[7:], "tasks:write")
        self.services.limiter.hit(principal.tenant_id, "submit")
        task_input = models.SubmitTaskInput(type=message.type, payload=json.loads(message.payload))
        ctx = RequestContext(f"req_{uuid.uuid4()}", principal, self.services, "grpc")
        result = await submit_task(task_input, ctx)
        await stream.send_message(
            SubmitTaskResponse(task_id=result.task_id, status=result.status, created_at=result.created_at)
        )

    def __mapping__(self) -> dict[str, grpclib.const.Handler]:
        return {
            "/grey.v1.GreyService/SubmitTask": grpclib.const.Handler(
                self.submit, grpclib.const.Cardinality.UNARY_UNARY, SubmitTaskRequest, SubmitTaskResponse
            )
        }


async def _serve_grpc(build: Callable[[], grpclib.server.Server], port: int) -> None:
    server = build()
    await server.start("127.0.0.1", port)
    print("ready", flush=True)
    await server.wait_closed()


def main() -> None:
    kind, port, database_url, key_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    services = open_services(database_url)
    key_file.write_text(bench_key(services))
    if kind == "grey-rest":
        app = Platform.build(services).rest
    elif kind == "bare-rest":
        app = bare_rest_app(services)
    elif kind == "grey-grpc":
        platform = Platform.build(services)
        uvloop.run(_serve_grpc(platform.grpc_server, port))
        return
    elif kind == "bare-grpc":
        uvloop.run(_serve_grpc(lambda: grpclib.server.Server([BareSubmit(services)]), port))
        return
    else:
        raise SystemExit(f"unknown server kind {kind}")
    print("ready", flush=True)
    serve_rest(app, port)


if __name__ == "__main__":
    main()
