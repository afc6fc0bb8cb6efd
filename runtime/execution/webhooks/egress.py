"""Where deliveries may go: public addresses only, unless the operator allows a network.

A webhook URL names a host; a tenant chooses it, so it must not reach what only the
cluster can reach (loopback, private networks, link-local addresses such as the cloud
metadata service at 169.254.169.254). The host is resolved once per attempt, every
answer is checked, and the connection goes to the address that was checked (`pin`): a
DNS answer that changes between the check and the connect (rebinding) cannot redirect
it. Redirects are never followed (runtime/execution/webhooks/sender.py).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from runtime.execution.webhooks.settings import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: host, port -> the addresses it resolves to (as text); raises OSError when it cannot.
Resolver = Callable[[str, int], Sequence[str]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_ALLOW_HINT = "GREY_WEBHOOK_ALLOWED_NETWORKS can allow it"


class EgressRefused(Exception):
    """The URL leads somewhere deliveries may not go."""


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class Target:
    """Where one attempt connects: `url` with the checked address for its host, the
    original `host` for the Host header and, over TLS, for SNI and the certificate check."""

    url: str
    host: str
    sni_hostname: str | None


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, Teredo), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


class EgressPolicy:
    def __init__(self, allowed: Sequence[Network] = (), resolver: Resolver = system_resolver) -> None:
        self.allowed = tuple(allowed)
        self.resolver = resolver

    def refusal(self, address: Address) -> str | None:
        """Why deliveries may not reach `address` (None: they may)."""
        if any(address.version == net.version and address in net for net in self.allowed):
            return None
        inner = _embedded_ipv4(address)
        if inner is not None:
            return self.refusal(inner)
        if address.is_loopback:
            return "loopback"
        if address.is_link_local:
            return "link-local (cloud metadata)" if str(address) == "169.254.169.254" else "link-local"
        if address.is_multicast:
            return "multicast"
        if address.is_unspecified:
            return "unspecified"
        if address.is_private:
            return "private"
        if not address.is_global:
            return "not publicly routable"
        return None

    def resolve(self, host: str, port: int) -> str:
        """The first address of `host` deliveries may reach; EgressRefused when it has
        none (OSError when it cannot be resolved)."""
        refused = []
        for answer in self.resolver(host, port):
            address = ipaddress.ip_address(answer)
            reason = self.refusal(address)
            if reason is None:
                return str(address)
            refused.append(f"{address} ({reason})")
        if not refused:
            raise OSError(f"{host} has no address")
        where = ", ".join(refused)
        raise EgressRefused(f"{host} resolves to {where}: not allowed for webhooks; {_ALLOW_HINT}")

    def pin(self, url: str) -> Target:
        """The URL with its host resolved and checked once: connect there."""
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise EgressRefused(f"{url!r} is not an http(s) URL")
        host = parsed.raw_host.decode("ascii")
        address = self.resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80))
        literal = _is_address(host)
        return Target(
            url=str(parsed.copy_with(host=address)),
            host=parsed.netloc.decode("ascii"),
            sni_hostname=None if literal or parsed.scheme != "https" else host,
        )

    def check(self, url: str) -> str | None:
        """At registration: why the URL is refused now, or None (also when its host does
        not resolve yet: every attempt checks again)."""
        try:
            self.pin(url)
        except EgressRefused as refused:
            return str(refused)
        except (OSError, ValueError, httpx.InvalidURL):
            return None
        return None


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
