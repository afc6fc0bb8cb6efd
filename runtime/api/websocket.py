"""What a contract declares for each WebSocket endpoint: its handler and the scopes it needs.

The gateway authenticates the upgrade (runtime/gateway/rest/websocket.py) as it does every
REST call, then hands the handler an accepted-or-not starlette `WebSocket` and the call's
`RequestContext`; the handler speaks the API's messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.websockets import WebSocket

from runtime.api.context import RequestContext

WebSocketHandler = Callable[[WebSocket, RequestContext], Awaitable[None]]

#: Close codes (RFC 6455 §7.4.1) the gateway and handlers use.
CLOSE_POLICY = 1008  # the client broke a rule: too slow to read what it is sent
CLOSE_GOING_AWAY = 1001  # the server is shutting down


@dataclass(frozen=True, slots=True)
class WebSocketSpec:
    """One WebSocket endpoint of a contract (`ApiContract.websockets`, by path)."""

    handler: WebSocketHandler
    scopes: frozenset[str]
    description: str = ""
