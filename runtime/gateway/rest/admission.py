"""Credentials, scope and rate limit for the routed operation, before validation.

Sits in connexion's stack right after routing, so an unauthenticated call is answered 401
before its body is even read.
"""

from __future__ import annotations

from connexion.middleware.abstract import ROUTING_CONTEXT
from starlette.types import ASGIApp, Receive, Scope, Send

from runtime.gateway.dispatch import Dispatcher
from runtime.gateway.rest.edge import CALL_KEY

PRINCIPAL_KEY = "grey.principal"
WINDOW_KEY = "grey.window"


def credential_from_headers(headers: list[tuple[bytes, bytes]]) -> str | None:
    api_key = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key":
            api_key = value.decode("latin-1").strip()
    return api_key


def client_of(scope: Scope) -> str:
    """The peer's address (behind a proxy, the proxy's: uvicorn's --forwarded-allow-ips)."""
    client = scope.get("client")
    return str(client[0]) if client else ""


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, dispatcher: Dispatcher) -> None:
        self.app = app
        self.dispatcher = dispatcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            routing = scope.get("extensions", {}).get(ROUTING_CONTEXT, {})
            operation = self.dispatcher.operations.get(routing.get("operation_id") or "")
            if operation is not None:
                scope[CALL_KEY]["operation"] = operation.operation_id
                credential = credential_from_headers(scope["headers"])
                principal, window = await self.dispatcher.admit(operation, credential, client_of(scope))
                scope[PRINCIPAL_KEY] = principal
                scope[WINDOW_KEY] = window
        await self.app(scope, receive, send)
