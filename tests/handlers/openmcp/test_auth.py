"""OpenMCP Chain's token exchange: workspace credentials → a short-lived bearer token, over
REST (`access_token`) and gRPC AuthService.Authenticate (`token`); a wrong secret is
UNAUTHENTICATED in the API's own words on each transport."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.rpc import error_details_pb2
from grpclib.const import Status

from generated.openmcp.pb import openmcp_pb2
from tests.handlers.openmcp.conftest import OpenMcp


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_token_exchange_gives_a_bearer_token_that_expires_in_fifteen_minutes(
    openmcp: OpenMcp, key: str
) -> None:
    answer = await openmcp.authenticate("acme", key)
    assert answer.ok, answer
    token = answer.data["access_token"]
    assert token.count(".") == 2  # a JWT
    lifetime = _instant(answer.data["expires_at"]) - datetime.now(UTC)
    assert timedelta(minutes=14) < lifetime <= timedelta(minutes=15, seconds=5)
    submitted = await openmcp.submit(token, type="echo", payload={"hello": "world"})
    assert submitted.ok and submitted.data["status"] == "PENDING"


async def test_a_grey_api_key_is_accepted_as_the_bearer_token_too(openmcp: OpenMcp, key: str) -> None:
    assert (await openmcp.submit(key, type="echo")).ok


async def test_a_wrong_secret_is_unauthenticated_in_openmcps_words(openmcp: OpenMcp, key: str) -> None:
    wrong = await openmcp.authenticate("acme", "grey_api_key_acme_not-a-real-key")
    other_workspace = await openmcp.authenticate("globex", key)
    for answer in (wrong, other_workspace):
        assert answer.code == "UNAUTHENTICATED"
        if openmcp.name == "rest":
            assert answer.status == 401
            assert answer.error["message"] and answer.error["request_id"]
            assert answer.error["details"] == {}
        else:
            assert answer.status == Status.UNAUTHENTICATED.value
            info, error = answer.details
            assert isinstance(info, error_details_pb2.ErrorInfo) and info.reason == "UNAUTHENTICATED"
            assert isinstance(error, openmcp_pb2.Error) and error.code == "UNAUTHENTICATED" and error.message


async def test_a_call_without_a_token_or_with_a_forged_one_is_unauthenticated(
    openmcp: OpenMcp, token: str
) -> None:
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for credential in ("", forged):
        answer = await openmcp.get(credential, "task_anything")
        assert answer.code == "UNAUTHENTICATED"
        assert answer.status == (401 if openmcp.name == "rest" else Status.UNAUTHENTICATED.value)
