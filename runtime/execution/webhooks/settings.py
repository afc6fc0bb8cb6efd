"""Settings of webhook deliveries, from the environment.

- `GREY_WEBHOOK_ALLOWED_NETWORKS`: comma-separated networks (`127.0.0.1/32`, `10.0.0.0/8`,
  `fd00::/8`) deliveries may reach although they are not public; default none: loopback,
  private, link-local (cloud metadata), shared, reserved and multicast addresses are refused.
- `GREY_WEBHOOK_RETRY_SCHEDULE`: seconds before each retry, after a first attempt made at
  once (default the Standard Webhooks schedule `5,300,1800,7200,18000,36000,36000`: 5 s,
  5 min, 30 min, 2 h, 5 h, 10 h, 10 h); a delivery that fails them all is a dead letter.
- `GREY_WEBHOOK_MAX_RETRY_AFTER_SECONDS` (default 36000): the longest `Retry-After` honoured.
- `GREY_WEBHOOK_TIMEOUT_SECONDS` (default 10): connect and read timeout of one attempt.
- `GREY_WEBHOOK_CONCURRENCY` (default 8): attempts in flight at once.
- `GREY_WEBHOOK_POLL_SECONDS` (default 0.5): how often the coordinator looks for due deliveries.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Standard Webhooks' retries, after an immediate first attempt.
STANDARD_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    allowed_networks: tuple[Network, ...] = ()
    retry_schedule: tuple[float, ...] = STANDARD_SCHEDULE
    max_retry_after_seconds: float = 36000.0
    timeout_seconds: float = 10.0
    concurrency: int = 8
    poll_seconds: float = 0.5

    @property
    def claim_seconds(self) -> float:
        """How long an attempt keeps its delivery: past it, the delivery is due again."""
        return 3 * self.timeout_seconds + 30.0

    @classmethod
    def from_env(cls) -> WebhookSettings:
        env = os.environ
        values: dict[str, object] = {}
        if env.get("GREY_WEBHOOK_ALLOWED_NETWORKS", "").strip():
            values["allowed_networks"] = parse_networks(env["GREY_WEBHOOK_ALLOWED_NETWORKS"])
        if env.get("GREY_WEBHOOK_RETRY_SCHEDULE", "").strip():
            delays = env["GREY_WEBHOOK_RETRY_SCHEDULE"].split(",")
            values["retry_schedule"] = tuple(float(d) for d in delays if d.strip())
        for name, var in {
            "max_retry_after_seconds": "GREY_WEBHOOK_MAX_RETRY_AFTER_SECONDS",
            "timeout_seconds": "GREY_WEBHOOK_TIMEOUT_SECONDS",
            "poll_seconds": "GREY_WEBHOOK_POLL_SECONDS",
        }.items():
            if env.get(var, "").strip():
                values[name] = float(env[var])
        if env.get("GREY_WEBHOOK_CONCURRENCY", "").strip():
            values["concurrency"] = max(1, int(env["GREY_WEBHOOK_CONCURRENCY"]))
        return cls(**values)  # type: ignore[arg-type]


def parse_networks(text: str) -> tuple[Network, ...]:
    """`127.0.0.1, 10.0.0.0/8` -> networks (a bare address is a network of one)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())
