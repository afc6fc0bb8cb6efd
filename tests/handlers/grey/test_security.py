"""The `security` operations: not built yet, they answer `not_implemented` on both transports."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/security/attestation"),
        ("GET", "/v1/security/attestation/node-1"),
        ("GET", "/v1/security/isolation"),
    ],
)
async def test_operations_not_built_yet_answer_501_not_implemented(rest, key, method, path) -> None:
    response = await rest.request(method, path, headers={"X-API-Key": key})
    assert response.status_code == 501
    assert response.json()["error"]["code"] == "not_implemented"


async def test_grpc_operations_not_built_yet_are_unimplemented_with_the_code(call, key) -> None:
    outcome = await call("requestAttestation", key, node_id="node-1")
    assert outcome.code == "not_implemented"
