"""What a handler knows about the call besides its input."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.services import Services
from runtime.services.auth import Principal

__all__ = ["Principal", "RequestContext"]


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str
    principal: Principal | None
    services: Services
    transport: str  # "rest" | "grpc"
    client: str = ""  # the caller's address, as the transport saw it
    api: str = "grey"  # the API (contract) the call came in through

    @property
    def principal_scopes(self) -> frozenset[str]:
        return frozenset() if self.principal is None else self.principal.scopes

    @property
    def tenant_id(self) -> str:
        if self.principal is None:
            raise RuntimeError("anonymous call has no tenant")
        return self.principal.tenant_id
