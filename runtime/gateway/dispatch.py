"""Transport-neutral calling of one operation: credentials, scope, rate limit, input, handler.

REST and gRPC adapters both come through here, so both give the same answers and the same
errors for the same call.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from runtime.api.context import Principal, RequestContext
from runtime.api.errors import ApiError
from runtime.api.operation import OperationSpec
from runtime.gateway.contracts import ApiContract, Handler
from runtime.services import Services
from runtime.services.ratelimit import Window

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_or_new(candidate: str | None) -> str:
    """The caller's request id when it is safe to echo in logs and headers; else a new one."""
    if candidate is not None and _SAFE_REQUEST_ID.match(candidate):
        return candidate
    return new_request_id()


def new_request_id() -> str:
    """`req_` and a random UUID (version 4), as `f"req_{uuid.uuid4()}"` gives, in half its time
    (no UUID object: the calling of every request that brings no id of its own)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    hexed = raw.hex()
    return f"req_{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


def bucket_of(operation: OperationSpec) -> str:
    """The rate-limit class of an operation: its contract's `x-grey-rate-class` (default `other`)."""
    return operation.rate_class


def describe_validation_error(error: ValidationError) -> tuple[str, dict[str, Any]]:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    message = f"{field}: {first['msg']}" if field else first["msg"]
    return message, {"field": field, "errors": len(error.errors())}


#: The credential id of a call without credentials, admitted as the API's anonymous tenant.
ANONYMOUS_PREFIX = "anonymous:"


def rate_key(principal: Principal) -> str:
    """Whose window a call counts in: its tenant's; an anonymous call's, its tenant's per
    client address (the reference limits per IP)."""
    if principal.credential_id.startswith(ANONYMOUS_PREFIX):
        return f"{principal.tenant_id}|{principal.credential_id}"
    return principal.tenant_id


def require_scopes(principal: Principal, scopes: frozenset[str], what: str) -> None:
    """403 `forbidden` unless the principal holds every scope of `scopes`."""
    missing = scopes - principal.scopes
    if missing:
        raise ApiError(
            "forbidden",
            f"{what} needs scope {', '.join(sorted(missing))}",
            {"required_scopes": sorted(scopes)},
        )


class Dispatcher:
    def __init__(self, services: Services, contract: ApiContract) -> None:
        self.services = services
        self.contract = contract
        self._handlers: Mapping[str, Handler] = contract.handlers
        self.anonymous_tenant = services.settings.anonymous_tenants.get(
            contract.name, services.cluster.anonymous_tenants.get(contract.name)
        )
        if self.anonymous_tenant is not None and not contract.anonymous_scopes:
            raise ValueError(
                f"GREY_{contract.name.upper()}_ANONYMOUS_TENANT (or the cluster config's "
                f"anonymous_tenants.{contract.name}) is set, but {contract.title} "
                "never takes calls without credentials"
            )

    @property
    def operations(self) -> Mapping[str, OperationSpec]:
        """The operations of the API this dispatcher serves, by operationId."""
        return self.contract.operations

    async def admit(
        self, operation: OperationSpec, credential: str | None, client: str = ""
    ) -> tuple[Principal | None, Window | None]:
        """Authenticates, checks the scope and counts the call against the rate limit."""
        if operation.public:
            return None, None
        principal = await self.authenticate(credential, client)
        require_scopes(principal, operation.scopes, operation.operation_id)
        window = self.services.limiter.hit(rate_key(principal), bucket_of(operation), self.contract.name)
        return principal, window

    async def authenticate(self, credential: str | None, client: str = "") -> Principal:
        """Who is calling this API: the credential's principal (401 `unauthorized` when it is
        missing or wrong), or, for a call without one where the operator named this API's
        anonymous tenant, that tenant with the contract's `anonymous_scopes`. Every entry
        point of the API calls this (REST and gRPC through `admit`, WebSockets directly)."""
        if not credential:
            if self.anonymous_tenant is None:
                raise ApiError("unauthorized", "Missing API key or bearer token")
            return Principal(
                self.anonymous_tenant, self.contract.anonymous_scopes, f"{ANONYMOUS_PREFIX}{client}"
            )
        auth = self.services.auth
        principal = auth.cached(credential)
        if principal is None:
            principal = await self.services.blocking.run(auth.authenticate, credential, client)
        return principal

    def parse_input(self, operation: OperationSpec, raw: dict[str, Any]) -> Any:
        try:
            return operation.input_model.model_validate(raw)
        except ValidationError as error:
            message, details = describe_validation_error(error)
            raise ApiError(operation.input_error_code, message, details) from None

    def context(
        self, principal: Principal | None, request_id: str, transport: str, client: str = ""
    ) -> RequestContext:
        return RequestContext(request_id, principal, self.services, transport, client, self.contract.name)

    def handler(self, operation: OperationSpec) -> Handler:
        return self._handlers[operation.operation_id]
