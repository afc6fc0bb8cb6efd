"""The outermost REST layer: request ids, path aliases, body limit, one error envelope.

Everything that goes wrong below — a handler's ApiError, a routing miss, an unexpected
exception — leaves through here as the API's error envelope, in the API's own codes, with
`X-Request-ID`, never as a traceback.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from connexion.exceptions import ProblemException
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.api.errors import ApiError
from runtime.gateway.contracts import ApiContract
from runtime.gateway.dispatch import request_id_or_new
from runtime.gateway.errors import as_api_error
from runtime.gateway.rest.routes import Routes
from runtime.services.metrics import Metrics

WebSocketUpgrades = Callable[[Scope, Receive, Send, str], Awaitable[None]]

logger = logging.getLogger("grey.rest")

REQUEST_ID_KEY = "grey.request_id"
CALL_KEY = "grey.call"
_PROBLEM_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class BodyTooLarge(Exception):
    pass


def rest_api_error(error: Exception) -> ApiError:
    """`as_api_error`, plus what only the REST stack raises (connexion, Starlette, body limit)."""
    if isinstance(error, BodyTooLarge):
        return ApiError("payload_too_large", str(error))
    if isinstance(error, ProblemException):
        code = _PROBLEM_CODES.get(error.status, "bad_request")
        return ApiError(code, str(error.detail or error.title))
    if isinstance(error, HTTPException):
        code = _PROBLEM_CODES.get(error.status_code, "bad_request")
        return ApiError(code, str(error.detail), headers=dict(error.headers or {}))
    return as_api_error(error)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return request_id_or_new(value.decode("latin-1"))
    return request_id_or_new(None)


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        metrics: Metrics,
        routes: Routes,
        contract: ApiContract,
        websockets: WebSocketUpgrades,
    ) -> None:
        self.app = app
        self.websockets = websockets
        self.routes = routes
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.contract = contract

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        for alias, target in self.contract.path_aliases:
            if path.startswith(alias + "/") or path == alias:
                cut = len(alias) - len(target)
                scope = {
                    **scope,
                    "path": target + path[len(alias) :],
                    "raw_path": scope.get("raw_path", b"")[cut:],
                }
                break
        request_id = _request_id(scope)
        scope[REQUEST_ID_KEY] = request_id
        if scope["type"] == "websocket":
            # Never into connexion, which answers no upgrade (a bare 500 from the server).
            await self.websockets(scope, receive, send, request_id)
            return
        # Shared by reference: layers below may copy the scope, the admission layer names the call.
        call = scope[CALL_KEY] = {"operation": "unrouted"}
        id_header = (b"x-request-id", request_id.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        began = time.perf_counter()
        outcome = "ok"
        try:
            self._check_declared_length(scope)
            await self.app(scope, self._limited(receive), send_with_id)
        except Exception as error:
            if started:
                logger.exception("error after the response started", exc_info=error)
                return
            api_error = rest_api_error(error)
            outcome = api_error.code
            if api_error.code == "method_not_allowed":
                # connexion routes each method separately, so Starlette's Allow names only one.
                api_error.headers["Allow"] = ", ".join(self.routes.allowed_methods(scope["path"]))
            await send_error(
                send_with_id,
                api_error,
                request_id,
                self.contract.public_code(api_error.code),
                wrapped=self.contract.envelope,
            )
        finally:
            self.metrics.observe(
                self.contract.name, call["operation"], "rest", outcome, time.perf_counter() - began
            )

    def _check_declared_length(self, scope: Scope) -> None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise ApiError("bad_request", "Content-Length is not a number") from None
                if length > self.max_body_bytes:
                    raise BodyTooLarge(f"Body of {length} bytes is over the limit of {self.max_body_bytes}")

    def _limited(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body_bytes

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(f"Body is over the limit of {limit} bytes")
            return message

        return limited


async def send_error(
    send: Send, error: ApiError, request_id: str, code: str | None = None, wrapped: bool = False
) -> None:
    """The error envelope; `code` is the API's word for the error (default: Grey's); `wrapped`:
    in `{success: false, data: null, error}` (the contract's `x-grey-envelope`)."""
    body = json.dumps(error.envelope(request_id, code, wrapped)).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.kind.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
