"""Transport-neutral calling of one operation: credentials, scope, rate limit, input, handler.

REST and gRPC adapters both come through here, so both give the same answers and the same
errors for the same call.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from runtime.api.context import Principal, RequestContext
from runtime.api.errors import ApiError
from runtime.api.operation import OperationSpec
from runtime.services import Services
from runtime.services.ratelimit import Window, bucket_of

Handler = Callable[[Any, RequestContext], Any]


def load_handlers(operations: Mapping[str, OperationSpec]) -> dict[str, Handler]:
    """handlers/grey/<tag>.py defines one function per operation, named after its operationId."""
    table: dict[str, Handler] = {}
    for operation in operations.values():
        module = importlib.import_module(f"handlers.grey.{operation.tag}")
        table[operation.operation_id] = getattr(module, operation.handler)
    return table


def describe_validation_error(error: ValidationError) -> tuple[str, dict[str, Any]]:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    message = f"{field}: {first['msg']}" if field else first["msg"]
    return message, {"field": field, "errors": len(error.errors())}


class Dispatcher:
    def __init__(self, services: Services, handlers: Mapping[str, Handler]) -> None:
        self.services = services
        self._handlers = handlers

    async def admit(
        self, operation: OperationSpec, credential: str | None
    ) -> tuple[Principal | None, Window | None]:
        """Authenticates, checks the scope and counts the call against the rate limit."""
        if operation.public:
            return None, None
        if not credential:
            raise ApiError("unauthorized", "Missing API key or bearer token")
        auth = self.services.auth
        principal = auth.cached(credential)
        if principal is None:
            principal = await self.services.blocking.run(auth.authenticate, credential)
        missing = operation.scopes - principal.scopes
        if missing:
            raise ApiError(
                "forbidden",
                f"{operation.operation_id} needs scope {', '.join(sorted(missing))}",
                {"required_scopes": sorted(operation.scopes)},
            )
        window = self.services.limiter.hit(principal.tenant_id, bucket_of(operation))
        return principal, window

    def parse_input(self, operation: OperationSpec, raw: dict[str, Any]) -> Any:
        try:
            return operation.input_model.model_validate(raw)
        except ValidationError as error:
            message, details = describe_validation_error(error)
            raise ApiError(operation.input_error_code, message, details) from None

    def context(self, principal: Principal | None, request_id: str, transport: str) -> RequestContext:
        return RequestContext(request_id, principal, self.services, transport)

    def handler(self, operation: OperationSpec) -> Handler:
        return self._handlers[operation.operation_id]
