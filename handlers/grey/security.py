"""Handlers of the `security` operations: TEE attestation (simulation mode) and isolation.

Verdicts are this gateway's: quotes are verified against the simulation roots it is
configured to trust (runtime.execution.tee.service.TeeService); nothing claims hardware.
"""

from __future__ import annotations

import base64
import os
from collections import Counter

from generated.grey import models
from runtime.api.context import RequestContext
from runtime.api.errors import ApiError
from runtime.execution.tee.service import NodeDidNotAnswer, Verdict
from runtime.services import Services
from runtime.store import AttestationRecord, NodeRecord
from runtime.store.coltypes import utc_now

DOWN = "down"


def _tee_nodes(services: Services) -> list[NodeRecord]:
    """Registered tee workers not down."""
    return [
        node
        for node in services.store.nodes.list(role="worker")
        if node.pool == "tee" and node.status != DOWN
    ]


def _verdict(services: Services, record: AttestationRecord, node: NodeRecord | None) -> Verdict:
    verdict = services.runtime.tee.check_attestation(record)
    if verdict.valid and (node is None or node.status == DOWN):
        return Verdict(False, f"node {record.node_id} is down", verdict.at, verdict.facts)
    return verdict


def _status(services: Services) -> models.AttestationStatus:
    nodes = _tee_nodes(services)
    records = {record.node_id: record for record in services.store.tee.attestations()}
    platforms: Counter[str] = Counter()
    attested = 0
    for node in nodes:
        record = records.get(node.node_id)
        if record is not None and _verdict(services, record, node).valid:
            attested += 1
            platforms[record.platform] += 1
    seen = [records[node.node_id].verified_at for node in nodes if node.node_id in records]
    return models.AttestationStatus(
        nodes_attested=attested,
        nodes_total=len(nodes),
        all_valid=bool(nodes) and attested == len(nodes),
        platforms=dict(platforms),
        last_verification=max(seen, default=None),
    )


async def get_attestation_status(
    request: models.GetAttestationStatusInput, ctx: RequestContext
) -> models.AttestationStatus:
    """GET /v1/security/attestation: the tee nodes not down, and how many verify now."""
    return await ctx.services.blocking.run(_status, ctx.services)


def _node_attestation(services: Services, node_id: str) -> models.NodeAttestation:
    record = services.store.tee.attestation(node_id)
    if record is None:
        raise ApiError("not_found", f"Node {node_id} has no TEE attestation", {"node_id": node_id})
    verdict = _verdict(services, record, services.store.nodes.get(node_id))
    return models.NodeAttestation(
        node_id=node_id,
        valid=verdict.valid,
        platform=record.platform,
        debug=record.debug,
        mrenclave=record.mrenclave,
        mrsigner=record.mrsigner,
        verified_at=record.verified_at,
        expires_at=record.expires_at,
        reason=verdict.reason,
    )


async def verify_node_attestation(
    request: models.VerifyNodeAttestationInput, ctx: RequestContext
) -> models.NodeAttestation:
    """GET /v1/security/attestation/{node_id}: the node's latest attestation, verified here."""
    return await ctx.services.blocking.run(_node_attestation, ctx.services, request.node_id)


async def request_attestation(
    request: models.RequestAttestationInput, ctx: RequestContext
) -> models.AttestationResponse:
    """POST /v1/security/attestation and gRPC VerifyAttestation: a fresh quote of the node
    over the caller's challenge, verified here; the verdict becomes the node's."""
    services = ctx.services
    node = await services.blocking.run(services.store.nodes.get, request.node_id)
    if node is None or node.pool != "tee" or node.role != "worker" or node.status == DOWN:
        raise ApiError("not_found", f"No live tee node {request.node_id}", {"node_id": request.node_id})
    nonce = request.challenge.encode() if request.challenge else os.urandom(32)
    tee = services.runtime.tee
    try:
        evidence = await services.blocking.run(tee.evidence, node.node_id, nonce, services.runtime.bus.cancel)
    except NodeDidNotAnswer as error:
        raise ApiError(
            "service_unavailable", f"Node {node.node_id} gave no quote: {error}", {"node_id": node.node_id}
        ) from None
    verdict = tee.check_evidence(evidence.quote, nonce, evidence.node_key, evidence.signature)
    record = await services.blocking.run(tee.record, node.node_id, evidence, verdict)
    facts = verdict.facts
    return models.AttestationResponse(
        node_id=node.node_id,
        attestation=models.AttestationEvidence(
            platform=facts.platform if facts else "sgx-sim",
            quote=base64.b64encode(evidence.quote).decode(),
            signature=base64.b64encode(evidence.signature).decode(),
            debug=facts.debug if facts else True,
            nonce=nonce.hex(),
            mrenclave=facts.mrenclave if facts else None,
            mrsigner=facts.mrsigner if facts else None,
            node_key=evidence.node_key,
        ),
        verified=verdict.valid,
        verified_at=verdict.at,
        expires_at=record.expires_at if record else None,
        reason=verdict.reason,
    )


def _isolation(services: Services, tenant_id: str) -> models.IsolationStatus:
    violations, _ = services.store.isolation.refusals(tenant_id)
    tee = any(node.tee_enabled for node in _tee_nodes(services))
    return models.IsolationStatus(
        tenant_id=tenant_id,
        isolation_level="logical",
        violations=violations,
        last_checked=utc_now(),
        features={
            # Enforced: every read of a task, result, proof or stream is scoped to its tenant
            # (another tenant's id answers 404 and counts as a violation), credentials carry
            # a tenant and scopes, rate limits are kept per tenant.
            "tenant_scoped_data": True,
            "scoped_credentials": True,
            "per_tenant_rate_limits": True,
            # A TEE node is attested now; tasks run in it only when they ask (tee_required).
            "tee_available": tee,
            "tee_enforcement": False,
            # Not enforced: the TEE is a simulation (no hardware, no memory encryption), and
            # tasks of every tenant share worker processes and the host's network.
            "tee_hardware": False,
            "memory_encryption": False,
            "process_isolation": False,
            "network_isolation": False,
        },
    )


async def get_isolation_status(
    request: models.GetIsolationStatusInput, ctx: RequestContext
) -> models.IsolationStatus:
    """GET /v1/security/isolation: what is enforced for the tenant, and refused cross-tenant reads."""
    return await ctx.services.blocking.run(_isolation, ctx.services, ctx.tenant_id)
