"""What the generated operation table records about each operation."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class OperationSpec:
    operation_id: str
    method: str
    path: str
    tag: str
    handler: str
    scopes: frozenset[str]
    public: bool
    input_model: type[BaseModel]
    response_model: type[BaseModel] | None
    success_status: int
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    array_params: frozenset[str]
    has_body: bool
    media: tuple[str, ...]
    streaming: bool
    grpc: str | None
    rate_class: str  # the rate-limit bucket its calls count in (x-grey-rate-class)

    @property
    def input_error_code(self) -> str:
        """Bad input is `invalid_payload` where there is a body, else `invalid_parameter`."""
        return "invalid_payload" if self.has_body else "invalid_parameter"
