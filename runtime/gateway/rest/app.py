"""Assembles the REST app: edge → connexion (Swagger UI, routing, admission, validation) → endpoint."""

from __future__ import annotations

from functools import partial

import yaml
from connexion import ConnexionMiddleware
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from starlette.types import ASGIApp

from runtime.api.envelope import served_document
from runtime.gateway.dispatch import Dispatcher
from runtime.gateway.rest.admission import AdmissionMiddleware
from runtime.gateway.rest.edge import EdgeMiddleware
from runtime.gateway.rest.endpoint import OperationEndpoint
from runtime.gateway.rest.routes import Routes
from runtime.gateway.rest.static_routes import RouteMemo, StaticRoutes
from runtime.gateway.rest.validation import CompiledValidationMiddleware
from runtime.gateway.rest.websocket import WebSockets, connections_per_client


def build_rest_app(dispatcher: Dispatcher) -> ASGIApp:
    """connexion routes and validates against the contract's spec/<api>/openapi.yaml; our
    endpoint calls its handlers.

    connexion's default stack also has its decorator chain, a per-request jsonschema
    validator, a security layer and response validation; we keep routing, Swagger UI and
    the same request checks, compiled once (runtime.gateway.rest.validation), and do credentials
    once for both transports (runtime.gateway.dispatch). A call to a path without parameters
    that connexion has routed once skips its routers afterwards (runtime.gateway.rest.static_routes).
    """
    contract = dispatcher.contract
    static_routes = StaticRoutes(contract.operations)
    middleware = ConnexionMiddleware(
        OperationEndpoint(dispatcher),
        middlewares=[
            SwaggerUIMiddleware,
            RoutingMiddleware,
            partial(RouteMemo, routes=static_routes),
            partial(AdmissionMiddleware, dispatcher=dispatcher),
            CompiledValidationMiddleware,
        ],
        swagger_ui_options=SwaggerUIOptions(swagger_ui=True, spec_path="/openapi.json"),
    )
    static_routes.connexion = middleware
    # connexion resolves each operationId to its handler: the same table the endpoint calls.
    resolver = Resolver(
        function_resolver=lambda operation_id: dispatcher.handler(contract.operations[operation_id])
    )
    # An `x-grey-envelope` API serves its document with the envelope said around every answer.
    spec = served_document(yaml.safe_load(contract.spec.read_text())) if contract.envelope else contract.spec
    middleware.add_api(spec, base_path="", name=contract.name, resolver=resolver)
    return EdgeMiddleware(
        static_routes,
        dispatcher.services.settings.max_body_bytes,
        dispatcher.services.metrics,
        Routes(contract.operations),
        contract,
        WebSockets(dispatcher, contract.websockets, connections_per_client()),
    )
