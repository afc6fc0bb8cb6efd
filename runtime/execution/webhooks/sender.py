"""One POST of a delivery, to the address the egress policy checked.

No redirects (a 3xx is a failed attempt), no proxies from the environment, no kept-alive
connections (each attempt connects to the address checked for it, and a TLS connection
is never reused for another host), and the response body is not read.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from runtime.execution.webhooks.egress import EgressPolicy, EgressRefused


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one POST went: the status (None: no answer) or what went wrong, and the
    receiver's `Retry-After` in seconds."""

    status_code: int | None
    error: str | None = None
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """410 Gone: the receiver asks for the endpoint to be disabled."""
        return self.status_code == 410


def retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` (seconds, or an HTTP date) as seconds from `now`."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class Sender:
    def __init__(self, policy: EgressPolicy, timeout_seconds: float) -> None:
        self.policy = policy
        self._client = httpx.Client(
            timeout=timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def post(self, url: str, content: bytes, headers: dict[str, str]) -> Attempt:
        try:
            target = self.policy.pin(url)
        except EgressRefused as refused:
            return Attempt(None, f"refused: {refused}")
        except (OSError, ValueError, httpx.InvalidURL) as error:
            return Attempt(None, f"cannot resolve: {error}")
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
        request = self._client.build_request(
            "POST",
            target.url,
            content=content,
            headers={**headers, "Host": target.host},
            extensions=extensions,
        )
        try:
            response = self._client.send(request, stream=True)
        except httpx.HTTPError as error:
            return Attempt(None, f"{type(error).__name__}: {error}")
        try:
            code = response.status_code
            wait = retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
            failure = None
            if response.is_redirect:
                failure = f"HTTP {code}: redirect to {response.headers.get('Location', '?')} not followed"
            elif not 200 <= code < 300:
                failure = f"HTTP {code}"
            return Attempt(code, failure, wait)
        finally:
            response.close()

    def close(self) -> None:
        self._client.close()
