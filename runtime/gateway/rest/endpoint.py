"""The innermost REST app: calls the operation's handler and renders what it returns."""

from __future__ import annotations

import asyncio
from typing import Any

from connexion.middleware.abstract import ROUTING_CONTEXT
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from runtime.api.envelope import success_body
from runtime.api.errors import ApiError
from runtime.api.responses import Binary, PlainText
from runtime.gateway.dispatch import Dispatcher
from runtime.gateway.rest.admission import PRINCIPAL_KEY, WINDOW_KEY, client_of
from runtime.gateway.rest.edge import REQUEST_ID_KEY
from runtime.gateway.rest.validation import BODY_KEY, PARAMS_KEY
from runtime.services.ratelimit import Window

Headers = list[tuple[bytes, bytes]]


def _headers(content_type: bytes, length: int | None, window: Window | None) -> Headers:
    headers: Headers = [(b"content-type", content_type)]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    if window is not None:
        headers += [(k.lower().encode(), v.encode()) for k, v in window.headers().items()]
    return headers


class OperationEndpoint:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        routing = scope.get("extensions", {}).get(ROUTING_CONTEXT, {})
        operation_id = routing.get("operation_id")
        if operation_id is None:
            raise ApiError("not_found", f"No operation at {scope['method']} {scope['path']}")
        operation = self.dispatcher.operations[operation_id]
        raw: dict[str, Any] = dict(scope.get(PARAMS_KEY, {}))
        body = scope.get(BODY_KEY)
        if isinstance(body, dict):
            raw.update(body)
        request = self.dispatcher.parse_input(operation, raw)
        ctx = self.dispatcher.context(
            scope.get(PRINCIPAL_KEY), scope[REQUEST_ID_KEY], "rest", client_of(scope)
        )
        handler = self.dispatcher.handler(operation)
        window: Window | None = scope.get(WINDOW_KEY)
        if operation.streaming:
            await self._stream(handler(request, ctx), receive, send, window)
            return
        result = await handler(request, ctx)
        await self._render(result, operation.success_status, send, window)

    async def _render(self, result: Any, status: int, send: Send, window: Window | None) -> None:
        """The handler's answer: 204 for None, JSON for a model (in `{success, data, error}`
        where the contract says `x-grey-envelope`), bytes or text as they are."""
        if result is None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": _headers(b"application/json", None, window)[1:],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        if isinstance(result, BaseModel):
            body = result.model_dump_json(exclude_none=True).encode()
            if self.dispatcher.contract.envelope:
                body = success_body(body)
            content_type = b"application/json"
        elif isinstance(result, Binary):
            body, content_type = result.content, result.media_type.encode()
        elif isinstance(result, PlainText):
            body, content_type = result.text.encode(), result.media_type.encode()
        else:
            raise TypeError(f"handler returned {type(result).__name__}")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": _headers(content_type, len(body), window),
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _stream(self, updates: Any, receive: Receive, send: Send, window: Window | None) -> None:
        iterator = updates.__aiter__()
        # The first update is awaited before answering, so a missing task is still a 404.
        try:
            first = await iterator.__anext__()
        except StopAsyncIteration:
            first = None
        headers = _headers(b"text/event-stream", None, window)
        headers += [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})

        async def pump() -> None:
            if first is None:
                return
            await send({"type": "http.response.body", "body": _event("status", first), "more_body": True})
            async for update in iterator:
                await send(
                    {"type": "http.response.body", "body": _event("status", update), "more_body": True}
                )

        # A client that goes away stops its stream at once: nothing keeps polling for nobody.
        pumping = asyncio.ensure_future(pump())
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({pumping, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pumping, gone):
                task.cancel()
            await asyncio.gather(pumping, gone, return_exceptions=True)
            await iterator.aclose()
        if pumping.done() and not pumping.cancelled():
            pumping.result()  # an error while streaming: after the start, logged by the edge
            await send({"type": "http.response.body", "body": b"event: done\ndata: {}\n\n"})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _event(name: str, model: BaseModel) -> bytes:
    return f"event: {name}\ndata: {model.model_dump_json(exclude_none=True)}\n\n".encode()
