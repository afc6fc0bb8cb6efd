"""Where connexion routed a call to a path without parameters, remembered for the next call.

connexion routes each request through two nested Starlette routers (its Swagger UI's, then
the API's), each trying its routes' patterns in turn and copying the scope on the way: about
a tenth of the gateway's time per `POST /v1/tasks`. For an operation whose path has no
parameters, the answer is fixed by the method and the path alone, so after connexion has
routed one call there, `StaticRoutes` sends the next calls of that method and path straight
to the layer after routing (admission), with the scope routing would have handed it.

What is remembered is only ever learned from connexion's own decision (`RouteMemo` sits
right after its routing), never derived: a path the Swagger UI serves, a 404, a 405, a
`HEAD`, an operation with path parameters all keep going through connexion every time.
tests/gateway/test_static_routes.py pins that the scope is the one connexion builds.
"""

from __future__ import annotations

from collections.abc import Mapping

from connexion.middleware.abstract import ROUTING_CONTEXT
from starlette.types import ASGIApp, Receive, Scope, Send

from runtime.api.operation import OperationSpec

#: At most this many (method, path, root path) remembered; the learnable ones are far fewer
#: (one per parameterless operation and root path), this only bounds a surprise.
MAX_ROUTES = 512


class StaticRoutes:
    """(method, path, root path) → the operation connexion routed it to, for the operations
    of `operations` whose path has no parameters."""

    def __init__(self, operations: Mapping[str, OperationSpec]) -> None:
        self.connexion: ASGIApp | None = None  # the connexion app it stands in front of
        self._methods = {
            op.operation_id: op.method.upper() for op in operations.values() if "{" not in op.path
        }
        self._known: dict[tuple[str, str, str], tuple[str, str]] = {}  # → (operation id, api base path)
        self._next: ASGIApp | None = None

    def learn(self, routed: Scope, next_app: ASGIApp) -> None:
        """Called with the scope connexion's routing hands on and the app it hands it to."""
        routing = routed.get("extensions", {}).get(ROUTING_CONTEXT, {})
        operation_id = routing.get("operation_id")
        method = routed["method"]
        if (
            self._methods.get(operation_id) != method
            or routed.get("path_params")
            or len(self._known) >= MAX_ROUTES
        ):
            return
        self._next = next_app
        key = (method, routed["path"], routed.get("root_path", ""))
        self._known[key] = (operation_id, routing.get("api_base_path", ""))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The call, routed from memory when it can be, else by connexion."""
        assert self.connexion is not None, "StaticRoutes.connexion is set when the app is built"
        if scope["type"] == "http" and self._next is not None:
            known = self._known.get((scope["method"], scope["path"], scope.get("root_path", "")))
            if known is not None:
                await self._next(routed_scope(scope, self.connexion, *known), receive, send)
                return
        await self.connexion(scope, receive, send)


def routed_scope(scope: Scope, connexion: ASGIApp, operation_id: str, api_base_path: str) -> Scope:
    """What connexion's `RoutingOperation` hands on for a path without parameters: a copy of
    the request's scope with connexion's app, no path parameters and its routing context."""
    routed = dict(scope)
    routed["app"] = connexion
    routed.setdefault("path_params", {})
    extensions = routed.setdefault("extensions", {})
    extensions.setdefault(ROUTING_CONTEXT, {}).update(
        {"api_base_path": api_base_path, "operation_id": operation_id}
    )
    return routed


class RouteMemo:
    """connexion's layer right after routing: tells `StaticRoutes` where the call went."""

    def __init__(self, app: ASGIApp, routes: StaticRoutes) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.routes.learn(scope, self.app)
        await self.app(scope, receive, send)
