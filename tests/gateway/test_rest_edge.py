"""Bad input over REST: always the envelope with a clear message, never a 500 or a traceback."""

from __future__ import annotations

import httpx
import pytest

from runtime.gateway.app import Platform
from runtime.services import Services
from runtime.services.ratelimit import RateLimits
from runtime.settings import Settings

VALID = {"type": "stateless", "payload": {"function": "echo"}}


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"] and "Traceback" not in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error


@pytest.mark.parametrize(
    ("body", "code", "names"),
    [
        ({"type": 5, "payload": {}}, "invalid_payload", "type"),
        ({"type": "quantum", "payload": {}}, "invalid_payload", "type"),
        ({**VALID, "timeout_seconds": 0}, "invalid_payload", "timeout_seconds"),
        ({**VALID, "timeout_seconds": "soon"}, "invalid_payload", "timeout_seconds"),
        ({**VALID, "priority": "urgent"}, "invalid_payload", "priority"),
        ({**VALID, "labels": {"a": 1}}, "invalid_payload", "labels"),
        ({**VALID, "surprise": True}, "invalid_payload", "surprise"),
        ({"payload": {}}, "invalid_payload", "type"),
        ([1, 2], "invalid_payload", "object"),
    ],
)
async def test_schema_violations_are_invalid_payload_naming_the_field(rest, key, body, code, names) -> None:
    response = await rest.post("/v1/tasks", json=body, headers={"X-API-Key": key})
    assert names in assert_envelope(response, 400, code)["message"]


async def test_malformed_json_is_bad_request(rest, key) -> None:
    response = await rest.post(
        "/v1/tasks", content=b'{"type": ', headers={"X-API-Key": key, "content-type": "application/json"}
    )
    assert "Malformed JSON" in assert_envelope(response, 400, "bad_request")["message"]


async def test_wrong_content_type_is_415(rest, key) -> None:
    response = await rest.post(
        "/v1/tasks", content=b"type=stateless", headers={"X-API-Key": key, "content-type": "text/plain"}
    )
    assert_envelope(response, 415, "unsupported_media_type")


async def test_body_over_the_limit_is_413_with_or_without_content_length(services, key) -> None:
    small = Services.open(Settings(database_url=services.settings.database_url, max_body_bytes=1024))
    app = Platform.build(small).rest
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            big = {**VALID, "payload": {"data": "x" * 2000}}
            response = await client.post("/v1/tasks", json=big, headers={"X-API-Key": key})
            assert_envelope(response, 413, "payload_too_large")

            async def chunks():
                yield b'{"type": "stateless", "payload": {"data": "'
                yield b"x" * 2000
                yield b'"}}'

            streamed = await client.post(
                "/v1/tasks", content=chunks(), headers={"X-API-Key": key, "content-type": "application/json"}
            )
            assert_envelope(streamed, 413, "payload_too_large")
    finally:
        small.close()


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("status=done", "status"),
        ("since=yesterday", "since"),
        ("type=quantum", "type"),
        ("label=novalue", "label"),
    ],
)
async def test_bad_query_parameters_are_invalid_parameter(rest, key, query, names) -> None:
    response = await rest.get(f"/v1/tasks?{query}", headers={"X-API-Key": key})
    assert names in assert_envelope(response, 400, "invalid_parameter")["message"]


async def test_unknown_route_and_method_get_the_envelope(rest, key) -> None:
    assert_envelope(await rest.get("/v1/nothing-here", headers={"X-API-Key": key}), 404, "not_found")
    assert_envelope(
        await rest.put("/v1/tasks", json={}, headers={"X-API-Key": key}), 405, "method_not_allowed"
    )


async def test_api_v1_prefix_answers_exactly_as_v1(rest, key) -> None:
    headers = {"X-API-Key": key}
    created = await rest.post("/api/v1/tasks", json=VALID, headers=headers)
    assert created.status_code == 201
    task_id = created.json()["task_id"]
    direct = (await rest.get(f"/v1/tasks/{task_id}", headers=headers)).json()
    prefixed = (await rest.get(f"/api/v1/tasks/{task_id}", headers=headers)).json()
    assert direct == prefixed
    assert_envelope(await rest.get("/api/v1/tasks/task_none", headers=headers), 404, "task_not_found")


async def test_every_response_carries_a_request_id_and_echoes_a_given_one(rest, key) -> None:
    assert (await rest.get("/health")).headers["x-request-id"].startswith("req_")
    response = await rest.get("/v1/tasks", headers={"X-API-Key": key, "X-Request-ID": "req_mine-1"})
    assert response.headers["x-request-id"] == "req_mine-1"


async def test_responses_carry_rate_limit_headers(rest, key) -> None:
    response = await rest.get("/v1/tasks", headers={"X-API-Key": key})
    assert int(response.headers["x-ratelimit-limit"]) == 10000
    assert int(response.headers["x-ratelimit-remaining"]) == 9999
    assert int(response.headers["x-ratelimit-reset"]) > 0


async def test_over_the_submit_limit_is_429_with_retry_after(services, key) -> None:
    limited = Services.open(Settings(database_url=services.settings.database_url), RateLimits(submit=2))
    app = Platform.build(limited).rest
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            for _ in range(2):
                assert (
                    await client.post("/v1/tasks", json=VALID, headers={"X-API-Key": key})
                ).status_code == 201
            response = await client.post("/v1/tasks", json=VALID, headers={"X-API-Key": key})
            error = assert_envelope(response, 429, "rate_limited")
            assert error["details"]["limit"] == 2
            assert int(response.headers["retry-after"]) >= 1
            assert response.headers["x-ratelimit-remaining"] == "0"
            # Other endpoint classes have their own window.
            assert (await client.get("/v1/tasks", headers={"X-API-Key": key})).status_code == 200
    finally:
        limited.close()


async def test_swagger_ui_and_the_openapi_document_are_served(rest) -> None:
    assert (await rest.get("/openapi.json")).json()["openapi"] == "3.0.3"
    assert (await rest.get("/ui/")).status_code == 200
