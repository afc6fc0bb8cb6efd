"""The dashboard's Starlette app: the page, its session, its JSON and its live socket.

`grey serve` mounts it at /dashboard/ on the Grey Distributed REST listener (same origin as
the API). Every answer carries a strict Content-Security-Policy (no inline script or style,
nothing from another origin); JSON is never cached. Reads need the session cookie; writes
also need the `X-Grey-Dashboard: 1` header (CSRF), and each checks the scope the API's own
operation needs, by calling Grey's handlers with the session's principal.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from generated.grey import models as grey
from handlers.grey.cluster import activate_node, drain_node, quarantine_node
from handlers.grey.tasks import cancel_task
from runtime.api.context import RequestContext
from runtime.api.envelope import error_body
from runtime.api.errors import ERRORS, ApiError
from runtime.gateway.dashboard import data
from runtime.gateway.dashboard.live import live_socket
from runtime.gateway.dashboard.session import (
    COOKIE,
    COOKIE_PATH,
    CSRF_HEADER,
    SESSION_SECONDS,
    InvalidCredentials,
    NotSignedIn,
    Sessions,
)
from runtime.services import Services
from runtime.services import tasks as task_service
from runtime.services.auth import Principal
from runtime.services.ratelimit import RateLimited

STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
#: Where `grey simulate --out`, `grey plan --out`, `grey loadtest` and `grey calibrate` write
#: by convention (the Makefile's targets): the capacity page lists what is there.
OUTPUT_ROOT = Path("out")


def _refuse(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(error_body({"code": code, "message": message, "details": {}}), status)


class SecurityHeaders:
    """CSP and friends on every answer; `Cache-Control: no-store` on all but the static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in (b"cache-control", b"content-security-policy")
                ]
                headers += _HEADERS
                headers.append((b"cache-control", b"no-cache" if static else b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


Handler = Callable[[Request, Principal], Awaitable[Response]]


class Dashboard:
    """The routes, over one gateway's services and one signer of sessions."""

    def __init__(self, services: Services, secure: bool, output_root: Path) -> None:
        self.services = services
        self.sessions = Sessions(services)
        self.secure = secure
        self.output_root = output_root

    # -- plumbing ----------------------------------------------------------------------------

    async def principal(self, cookie: str | None) -> Principal:
        return await self.services.blocking.run(self.sessions.principal, cookie)

    def guarded(self, scope: str | None, handler: Handler, *, writes: bool = False) -> Callable[..., Any]:
        """`handler` behind the session (401), the CSRF header for writes (403) and `scope` (403)."""

        async def endpoint(request: Request) -> Response:
            if writes and request.headers.get(CSRF_HEADER) != "1":
                return _refuse(403, "forbidden", "Missing the X-Grey-Dashboard header")
            try:
                principal = await self.principal(request.cookies.get(COOKIE))
            except NotSignedIn as error:
                return _refuse(401, "unauthorized", str(error))
            if scope is not None and scope not in principal.scopes:
                return _refuse(403, "forbidden", f"This needs the scope {scope}")
            try:
                return await handler(request, principal)
            except ApiError as error:
                return _refuse(ERRORS[error.code].http_status, error.code, error.message)
            except data.BadRequest as error:
                return _refuse(400, "invalid_parameter", str(error))
            except data.NotFound as error:
                return _refuse(404, "not_found", str(error))

        return endpoint

    def context(self, request: Request, principal: Principal) -> RequestContext:
        client = request.client.host if request.client else ""
        return RequestContext(secrets.token_hex(8), principal, self.services, "rest", client, "grey")

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        return await self.services.blocking.run(function, *args)

    # -- pages and session --------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    async def sign_in(self, request: Request) -> Response:
        """POST /session {"api_key": key or token}: the session cookie, never the key again."""
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _refuse(415, "unsupported_media_type", 'Send JSON: {"api_key": "..."}')
        try:
            body = await request.json()
        except ValueError:
            body = None
        credential = body.get("api_key") if isinstance(body, dict) else None
        if not isinstance(credential, str) or not credential.strip():
            return _refuse(400, "bad_request", "api_key is required")
        client = request.client.host if request.client else ""
        try:
            signed = await self.run(self.sessions.sign_in, credential, client)
        except InvalidCredentials:
            return _refuse(401, "unauthorized", "That API key or token is not valid")
        except RateLimited as limited:
            response = _refuse(429, "rate_limited", "Too many failed sign-ins; try again later")
            response.headers["retry-after"] = str(limited.retry_after)
            return response
        response = JSONResponse(self.me(signed.principal))
        response.set_cookie(
            COOKIE,
            signed.cookie,
            max_age=SESSION_SECONDS,
            path=COOKIE_PATH,
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )
        return response

    async def sign_out(self, request: Request) -> Response:
        if request.headers.get(CSRF_HEADER) != "1":
            return _refuse(403, "forbidden", "Missing the X-Grey-Dashboard header")
        response = JSONResponse({"signed_out": True})
        response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=self.secure, httponly=True, samesite="strict")
        return response

    @staticmethod
    def me(principal: Principal) -> dict[str, Any]:
        return {"signed_in": True, "tenant_id": principal.tenant_id, "scopes": sorted(principal.scopes)}

    async def who(self, request: Request) -> Response:
        """GET /session: who the page is signed in as; `signed_in: false` (a 200, so a page
        opened before sign-in logs no failed request) without a good session."""
        try:
            principal = await self.principal(request.cookies.get(COOKIE))
        except NotSignedIn as error:
            return JSONResponse({"signed_in": False, "reason": str(error)})
        return JSONResponse(self.me(principal))

    # -- data ----------------------------------------------------------------------------------

    async def tasks(self, request: Request, principal: Principal) -> Response:
        query = data.TaskQuery.parse(request.query_params, request.query_params.getlist("label"))
        return JSONResponse(await self.run(data.list_tasks, self.services, principal.tenant_id, query))

    async def task(self, request: Request, principal: Principal) -> Response:
        try:
            found = await task_service.find(
                self.services, principal.tenant_id, request.path_params["task_id"]
            )
        except task_service.TaskNotFound as missing:
            raise ApiError("task_not_found", str(missing)) from None
        return JSONResponse(await self.run(data.task_detail, self.services, principal.tenant_id, found))

    async def cancel(self, request: Request, principal: Principal) -> Response:
        task_id = request.path_params["task_id"]
        try:
            answer = await cancel_task(
                grey.CancelTaskInput(task_id=task_id, reason="cancelled from the dashboard"),
                self.context(request, principal),
            )
        except task_service.TaskNotFound as missing:
            raise ApiError("task_not_found", str(missing)) from None
        return JSONResponse(answer.model_dump(mode="json"))

    async def cluster(self, request: Request, principal: Principal) -> Response:
        view = await self.run(data.cluster, self.services)
        view["can_admin"] = "cluster:admin" in principal.scopes
        return JSONResponse(view)

    async def node_action(self, request: Request, principal: Principal) -> Response:
        node_id, action = request.path_params["node_id"], request.path_params["action"]
        ctx = self.context(request, principal)
        if action == "quarantine":
            node = await quarantine_node(grey.QuarantineNodeInput(node_id=node_id), ctx)
        elif action == "drain":
            node = await drain_node(grey.DrainNodeInput(node_id=node_id), ctx)
        elif action == "activate":
            node = await activate_node(grey.ActivateNodeInput(node_id=node_id), ctx)
        else:
            raise ApiError("not_found", f"No action {action}: quarantine, drain or activate")
        return JSONResponse(node.model_dump(mode="json"))

    async def models(self, request: Request, principal: Principal) -> Response:
        return JSONResponse(await self.run(data.models, self.services, principal.tenant_id))

    async def capacity(self, request: Request, principal: Principal) -> Response:
        runs = await self.run(data.capacity_runs, self.output_root)
        return JSONResponse({"root": str(self.output_root), "runs": runs})

    async def capacity_file(self, request: Request, principal: Principal) -> Response:
        path, media = await self.run(data.capacity_file, self.output_root, request.path_params["path"])
        return FileResponse(path, media_type=media)

    async def live(self, websocket: Any) -> None:
        await live_socket(websocket, self.services, self.sessions)


def build_dashboard(services: Services, *, secure: bool = False, output_root: Path | None = None) -> ASGIApp:
    """The dashboard, to mount at /dashboard (it answers at its own root). `secure`: the
    listener is TLS, so the cookie is marked Secure."""
    dash = Dashboard(services, secure, output_root if output_root is not None else OUTPUT_ROOT)
    read, write = dash.guarded, lambda scope, handler: dash.guarded(scope, handler, writes=True)
    routes = [
        Route("/", dash.index, methods=["GET"]),
        Route("/session", dash.sign_in, methods=["POST"]),
        Route("/session", dash.sign_out, methods=["DELETE"]),
        Route("/session", dash.who, methods=["GET"]),
        Route("/api/tasks", read("tasks:read", dash.tasks), methods=["GET"]),
        Route("/api/tasks/{task_id}", read("tasks:read", dash.task), methods=["GET"]),
        Route("/api/tasks/{task_id}/cancel", write("tasks:write", dash.cancel), methods=["POST"]),
        Route("/api/cluster", read("cluster:read", dash.cluster), methods=["GET"]),
        Route("/api/nodes/{node_id}/{action}", write("cluster:admin", dash.node_action), methods=["POST"]),
        Route("/api/models", read("tasks:read", dash.models), methods=["GET"]),
        Route("/api/capacity", read(None, dash.capacity), methods=["GET"]),
        Route("/api/capacity/files/{path:path}", read(None, dash.capacity_file), methods=["GET"]),
        WebSocketRoute("/live", dash.live),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return SecurityHeaders(Starlette(routes=routes))
