"""Reading answers in gswarm's `{success, data, error}` envelope (x-grey-envelope contracts)."""

from __future__ import annotations

from typing import Any

import httpx


def data(response: httpx.Response, status: int = 200) -> Any:
    """The `data` of a success in the envelope."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is True and body["error"] is None, body
    return body["data"]


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The `error` of a failure in the envelope: its code, a message and a details object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["data"] is None, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"] and isinstance(body["error"]["details"], dict), body
    return dict(body["error"])
