"""Handlers of the `security` operations (skeletons written by `make codegen`)."""

from __future__ import annotations

from generated.grey import models
from runtime.api.context import RequestContext
from runtime.api.errors import ApiError


async def get_attestation_status(
    request: models.GetAttestationStatusInput, ctx: RequestContext
) -> models.AttestationStatus:
    """GET /v1/security/attestation: Cluster-wide TEE attestation status. Not built yet: answers 501."""
    raise ApiError.not_implemented("getAttestationStatus")


async def request_attestation(
    request: models.RequestAttestationInput, ctx: RequestContext
) -> models.AttestationResponse:
    """POST /v1/security/attestation: Request a fresh attestation of a node. Not built yet: answers 501."""
    raise ApiError.not_implemented("requestAttestation")


async def verify_node_attestation(
    request: models.VerifyNodeAttestationInput, ctx: RequestContext
) -> models.NodeAttestation:
    """GET /v1/security/attestation/{node_id}: Verify one node's attestation. Not built yet: answers 501."""
    raise ApiError.not_implemented("verifyNodeAttestation")


async def get_isolation_status(
    request: models.GetIsolationStatusInput, ctx: RequestContext
) -> models.IsolationStatus:
    """GET /v1/security/isolation: The tenant's isolation status. Not built yet: answers 501."""
    raise ApiError.not_implemented("getIsolationStatus")
