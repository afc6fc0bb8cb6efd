"""WebSocket upgrades: the contract's endpoints, authenticated like REST; every other path
answers a proper HTTP error instead of the bare 500 an unanswered upgrade used to get.

Before `accept`, an ASGI app may answer an upgrade with an HTTP response
(`websocket.http.response`, which uvicorn and starlette's TestClient offer); where a server
lacks it, a `websocket.close` before accept is a 403. The answer is the API's envelope.

Credentials: `X-API-Key` / `Authorization: Bearer`, or, for browsers (which cannot set
headers on an upgrade), `?api_key=` or the subprotocol pair `["api_key", <key>]`
(`new WebSocket(url, ["api_key", key])`; the server then selects `api_key`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from urllib.parse import parse_qs

from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from runtime.api.errors import ApiError
from runtime.api.websocket import WebSocketSpec
from runtime.gateway.dispatch import Dispatcher, require_scopes
from runtime.gateway.errors import as_api_error
from runtime.gateway.rest.admission import client_of, credential_from_headers

logger = logging.getLogger("grey.websocket")

SUBPROTOCOL = "api_key"  # the browser's way to send a key: ["api_key", "<key>"]
DEFAULT_CONNECTIONS_PER_CLIENT = 5


def connections_per_client(env: Mapping[str, str] | None = None) -> int:
    """`GREY_WS_CONNECTIONS_PER_CLIENT` (default 5, the CloudAI reference's): concurrent
    WebSocket connections one client may hold on one gateway process."""
    raw = (os.environ if env is None else env).get("GREY_WS_CONNECTIONS_PER_CLIENT", "")
    if not raw.strip():
        return DEFAULT_CONNECTIONS_PER_CLIENT
    value = int(raw)
    if value < 1:
        raise ValueError("GREY_WS_CONNECTIONS_PER_CLIENT must be at least 1")
    return value


def credential_of(scope: Scope) -> tuple[str | None, str | None]:
    """(credential, subprotocol to select): headers first, then `?api_key=`, then the
    subprotocol pair."""
    credential = credential_from_headers(scope["headers"])
    if credential:
        return credential, None
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("api_key"):
        return query["api_key"][0].strip() or None, None
    offered: list[str] = list(scope.get("subprotocols") or [])
    if SUBPROTOCOL in offered:
        at = offered.index(SUBPROTOCOL)
        if at + 1 < len(offered) and offered[at + 1].strip():
            return offered[at + 1].strip(), SUBPROTOCOL
    return None, None


async def refuse(
    send: Send, scope: Scope, error: ApiError, request_id: str, code: str, wrapped: bool = False
) -> None:
    """The upgrade answered with an HTTP error in the API's envelope (403 where the server
    cannot send a response before accept)."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008, "reason": error.message[:120]})
        return
    body = json.dumps(error.envelope(request_id, code, wrapped)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send(
        {"type": "websocket.http.response.start", "status": error.kind.http_status, "headers": headers}
    )
    await send({"type": "websocket.http.response.body", "body": body})


class ConnectionSlots:
    """Open WebSocket connections per client (its credential; without one, its address), in
    this process: the 6th of a client over a limit of 5 is refused with 429."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def take(self, client: str) -> None:
        held = self._open.get(client, 0)
        if held >= self.limit:
            raise ApiError(
                "rate_limited",
                f"At most {self.limit} concurrent WebSocket connections per client",
                {"limit": self.limit},
            )
        self._open[client] = held + 1

    def give_back(self, client: str) -> None:
        held = self._open.get(client, 0) - 1
        if held > 0:
            self._open[client] = held
        else:
            self._open.pop(client, None)

    def held(self, client: str) -> int:
        return self._open.get(client, 0)


class WebSockets:
    """Every WebSocket upgrade of one API, after the edge's path aliases and request id."""

    def __init__(
        self, dispatcher: Dispatcher, endpoints: Mapping[str, WebSocketSpec], connections_per_client: int
    ) -> None:
        self.dispatcher = dispatcher
        self.endpoints = endpoints
        self.slots = ConnectionSlots(connections_per_client)

    async def __call__(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        contract = self.dispatcher.contract
        spec = self.endpoints.get(scope["path"])
        try:
            if spec is None:
                raise ApiError("not_found", f"No WebSocket endpoint at {scope['path']}")
            credential, subprotocol = credential_of(scope)
            client = client_of(scope)
            principal = await self.dispatcher.authenticate(credential, client)
            require_scopes(principal, spec.scopes, scope["path"])
            holder = principal.credential_id
            self.slots.take(holder)
        except Exception as error:  # every refusal is the API's envelope, never a 500
            api_error = error if isinstance(error, ApiError) else as_api_error(error)
            await refuse(
                send, scope, api_error, request_id, contract.public_code(api_error.code), contract.envelope
            )
            return
        accepted = False

        async def sending(message: Message) -> None:
            # Selects the credential's subprotocol on accept: a browser drops a connection
            # whose server selects none of the protocols it offered.
            nonlocal accepted
            if message["type"] == "websocket.accept":
                accepted = True
                if subprotocol is not None and not message.get("subprotocol"):
                    message = {**message, "subprotocol": subprotocol}
            await send(message)

        try:
            ctx = self.dispatcher.context(principal, request_id, "websocket", client)
            await spec.handler(WebSocket(scope, receive, sending), ctx)
        except Exception as error:
            if accepted:
                logger.exception("WebSocket handler of %s failed", scope["path"])
            else:  # refused before accept (bad query parameter, ...): an HTTP error
                api_error = as_api_error(error)
                await refuse(
                    send,
                    scope,
                    api_error,
                    request_id,
                    contract.public_code(api_error.code),
                    contract.envelope,
                )
        finally:
            self.slots.give_back(holder)
