"""The contract-independent half of the generated REST client (generated/<api>/client.py).

Retries, error envelopes, query encoding, auth headers and Server-Sent Events are the same
for every operation, so they live here where ruff and the type checker see them; codegen
only writes the thin subclasses with one method per operation.

Retries follow the contract's retry table: 429 waits for `Retry-After`, 500/502/503/504
back off exponentially, any other 4xx raises `GreyApiError` carrying the error code.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self, TypeVar, overload

import httpx
from pydantic import BaseModel

from runtime.api.envelope import unwrap

__all__ = [
    "DEFAULT_BASE_URL",
    "RETRYABLE",
    "AsyncGreyClientBase",
    "Event",
    "GreyApiError",
    "GreyClientBase",
    "RetryPolicy",
    "SSEParser",
    "auth_headers",
    "decode",
    "error_of",
    "json_body",
    "query_pairs",
]

M = TypeVar("M", bound=BaseModel)
Event = tuple[str, dict[str, Any]]
"""One Server-Sent Event: its `event:` name and its decoded JSON `data:`."""

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
RETRYABLE = frozenset({429, 500, 502, 503, 504})


class GreyApiError(Exception):
    """A non-retryable error answer (or one still failing after the retries)."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any], request_id: str | None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0

    def delay(self, attempt: int, response: httpx.Response) -> float:
        retry_after = response.headers.get("retry-after")
        if response.status_code == 429 and retry_after is not None:
            try:
                return min(float(retry_after), self.backoff_max)
            except ValueError:
                pass
        return min(self.backoff_base * 2.0**attempt, self.backoff_max)


def error_of(response: httpx.Response) -> GreyApiError:
    """The `GreyApiError` of an error answer, from its `{"error": {...}}` envelope if any."""
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        error = {"code": "unknown", "message": response.text}
    return GreyApiError(
        response.status_code,
        error.get("code", "unknown"),
        error.get("message", ""),
        error.get("details") or {},
        response.headers.get("x-request-id"),
    )


def query_pairs(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Query parameters as pairs: `None` left out, lists repeated, datetimes in ISO 8601."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, datetime):
                item = item.isoformat()
            elif isinstance(item, bool):
                item = str(item).lower()
            pairs.append((name, str(item)))
    return tuple(pairs)


def json_body(body: BaseModel | Mapping[str, Any] | None) -> Any:
    if isinstance(body, BaseModel):
        return body.model_dump(mode="json", exclude_none=True)
    return body


@overload
def decode(response: httpx.Response, model: type[M], envelope: bool = False) -> M: ...
@overload
def decode(response: httpx.Response, model: None, envelope: bool = False) -> Any: ...
def decode(response: httpx.Response, model: type[M] | None, envelope: bool = False) -> M | Any:
    """The model for a JSON answer; bytes, text or `None` (204) for the others.

    `envelope` (an `x-grey-envelope` API): the answer is the `data` of `{success, data, error}`;
    an envelope saying `success: false` raises its error even under a 2xx status."""
    if response.status_code == 204:
        return None
    content_type = response.headers.get("content-type", "")
    if model is None or not content_type.startswith("application/json"):
        return response.content if "octet-stream" in content_type else response.text
    if not envelope:
        return model.model_validate_json(response.content)
    try:
        success, data, _ = unwrap(response.content)
    except ValueError:
        raise GreyApiError(
            response.status_code,
            "invalid_envelope",
            "The answer is not a {success, data, error} envelope",
            {},
            response.headers.get("x-request-id"),
        ) from None
    if not success:
        raise error_of(response)
    return model.model_validate(data)


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class SSEParser:
    """Turns Server-Sent Events lines into (event, data) pairs."""

    def __init__(self) -> None:
        self.event = "message"
        self.data: list[str] = []

    def feed(self, line: str) -> Event | None:
        if not line:
            out = (self.event, json.loads("\n".join(self.data))) if self.data else None
            self.event, self.data = "message", []
            return out
        if line.startswith("event:"):
            self.event = line[6:].strip()
        elif line.startswith("data:"):
            self.data.append(line[5:].strip())
        return None


class GreyClientBase:
    """Blocking transport: send with retries, decode, stream events."""

    envelope: ClassVar[bool] = False
    """Answers come in `{success, data, error}` (the contract's `x-grey-envelope`)."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        retry: RetryPolicy = RetryPolicy(),
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url, headers=auth_headers(api_key), timeout=timeout, transport=transport
        )
        self._retry = retry

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, params: Mapping[str, Any], body: Any) -> httpx.Response:
        for attempt in range(self._retry.max_retries + 1):
            response = self._http.request(method, path, params=query_pairs(params), json=json_body(body))
            if response.status_code < 400:
                return response
            if response.status_code not in RETRYABLE or attempt == self._retry.max_retries:
                raise error_of(response)
            time.sleep(self._retry.delay(attempt, response))
        raise AssertionError("unreachable")

    @overload
    def _call(self, method: str, path: str, params: Mapping[str, Any], body: Any, model: type[M]) -> M: ...
    @overload
    def _call(self, method: str, path: str, params: Mapping[str, Any], body: Any, model: None) -> Any: ...
    def _call(
        self, method: str, path: str, params: Mapping[str, Any], body: Any, model: type[M] | None
    ) -> M | Any:
        """One operation call: `_send` then `decode`."""
        return decode(self._send(method, path, params, body), model, self.envelope)

    def _stream(self, path: str) -> Iterator[Event]:
        with self._http.stream("GET", path, headers={"Accept": "text/event-stream"}) as response:
            if response.status_code >= 400:
                response.read()
                raise error_of(response)
            parser = SSEParser()
            for line in response.iter_lines():
                if (event := parser.feed(line)) is not None:
                    yield event


class AsyncGreyClientBase:
    """asyncio transport with the same behaviour as `GreyClientBase`."""

    envelope: ClassVar[bool] = False

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        retry: RetryPolicy = RetryPolicy(),
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=auth_headers(api_key), timeout=timeout, transport=transport
        )
        self._retry = retry

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, method: str, path: str, params: Mapping[str, Any], body: Any) -> httpx.Response:
        for attempt in range(self._retry.max_retries + 1):
            response = await self._http.request(
                method, path, params=query_pairs(params), json=json_body(body)
            )
            if response.status_code < 400:
                return response
            if response.status_code not in RETRYABLE or attempt == self._retry.max_retries:
                raise error_of(response)
            await asyncio.sleep(self._retry.delay(attempt, response))
        raise AssertionError("unreachable")

    @overload
    async def _call(
        self, method: str, path: str, params: Mapping[str, Any], body: Any, model: type[M]
    ) -> M: ...
    @overload
    async def _call(
        self, method: str, path: str, params: Mapping[str, Any], body: Any, model: None
    ) -> Any: ...
    async def _call(
        self, method: str, path: str, params: Mapping[str, Any], body: Any, model: type[M] | None
    ) -> M | Any:
        """One operation call: `_send` then `decode`."""
        return decode(await self._send(method, path, params, body), model, self.envelope)

    async def _stream(self, path: str) -> AsyncIterator[Event]:
        async with self._http.stream("GET", path, headers={"Accept": "text/event-stream"}) as response:
            if response.status_code >= 400:
                await response.aread()
                raise error_of(response)
            parser = SSEParser()
            async for line in response.aiter_lines():
                if (event := parser.feed(line)) is not None:
                    yield event
