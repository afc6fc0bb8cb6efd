"""Assembles the REST app: edge → connexion (Swagger UI, routing, admission, validation) → endpoint."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from connexion import ConnexionMiddleware
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from starlette.types import ASGIApp

from generated.grey.operations import OPERATIONS
from runtime.gateway.dispatch import Dispatcher
from runtime.gateway.rest.admission import AdmissionMiddleware
from runtime.gateway.rest.edge import EdgeMiddleware
from runtime.gateway.rest.endpoint import OperationEndpoint
from runtime.gateway.rest.validation import CompiledValidationMiddleware

SPEC = Path(__file__).resolve().parents[3] / "spec" / "grey" / "openapi.yaml"


def build_rest_app(dispatcher: Dispatcher) -> ASGIApp:
    """connexion routes and validates against spec/openapi.yaml; our endpoint calls handlers.

    connexion's default stack also has its decorator chain, a per-request jsonschema
    validator, a security layer and response validation; we keep routing, Swagger UI and
    the same request checks, compiled once (runtime.gateway.rest.validation), and do credentials
    once for both transports (runtime.gateway.dispatch).
    """
    middleware = ConnexionMiddleware(
        OperationEndpoint(dispatcher),
        middlewares=[
            SwaggerUIMiddleware,
            RoutingMiddleware,
            partial(AdmissionMiddleware, dispatcher=dispatcher),
            CompiledValidationMiddleware,
        ],
        swagger_ui_options=SwaggerUIOptions(swagger_ui=True, spec_path="/openapi.json"),
    )
    # connexion resolves each operationId to its handler: the same table the endpoint calls.
    resolver = Resolver(function_resolver=lambda operation_id: dispatcher.handler(OPERATIONS[operation_id]))
    middleware.add_api(SPEC, base_path="", name="grey", resolver=resolver)
    return EdgeMiddleware(
        middleware, dispatcher.services.settings.max_body_bytes, dispatcher.services.metrics
    )
