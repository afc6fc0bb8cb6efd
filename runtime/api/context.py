"""What a handler knows about the call besides its input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.services import Services


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a tenant and the scopes its credential grants."""

    tenant_id: str
    scopes: frozenset[str]
    credential_id: str


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str
    principal: Principal | None
    services: Services
    transport: str  # "rest" | "grpc"

    @property
    def tenant_id(self) -> str:
        if self.principal is None:
            raise RuntimeError("anonymous call has no tenant")
        return self.principal.tenant_id
