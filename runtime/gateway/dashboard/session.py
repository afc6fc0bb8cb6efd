"""Dashboard sessions: an API key (or a token from POST /v1/auth/token) exchanged once for a
signed cookie, so the key never sits in the page, its storage or any URL.

The cookie holds an HS256 JWT naming the tenant, the scopes and the key id; it is signed with
a secret of this process (`GREY_DASHBOARD_SECRET` to share sessions between gateways or keep
them over a restart). Every request checks again that the key is live (bounded by the
credential cache, as the API's own checks are), so a revoked key ends its sessions too.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass

import jwt

from runtime.services import Services
from runtime.services.auth import InvalidCredentials, Principal, TtlCache

COOKIE = "grey_dashboard"
COOKIE_PATH = "/dashboard"
SESSION_SECONDS = 8 * 3600
#: What a mutating request must carry besides the cookie: a page of another origin cannot
#: set a custom header without CORS, which this origin never grants (CSRF).
CSRF_HEADER = "x-grey-dashboard"
_AUDIENCE = "grey-dashboard"
_ALGORITHM = "HS256"


class NotSignedIn(Exception):
    """No session, a forged or expired one, or its key was revoked."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    cookie: str  # the signed session
    principal: Principal
    expires_at: float  # epoch seconds


class Sessions:
    """Signs sessions in and reads them back, checking the key behind each is still live."""

    def __init__(self, services: Services, secret: str | None = None) -> None:
        self._services = services
        self._secret = secret or os.environ.get("GREY_DASHBOARD_SECRET") or secrets.token_urlsafe(48)
        self._live: TtlCache[bool] = TtlCache(services.settings.credential_cache_seconds)

    def sign_in(self, credential: str, client: str) -> SignedIn:
        """Blocking. InvalidCredentials for a bad key or token; the authenticator's
        RateLimited for a client past its failures (guessing costs the API's window)."""
        principal = self._services.auth.authenticate(credential.strip(), client)
        expires_at = time.time() + SESSION_SECONDS
        claims = {
            "sub": principal.tenant_id,
            "scope": " ".join(sorted(principal.scopes)),
            "kid": principal.credential_id,
            "aud": _AUDIENCE,
            "exp": int(expires_at),
            "iat": int(time.time()),
        }
        return SignedIn(jwt.encode(claims, self._secret, algorithm=_ALGORITHM), principal, expires_at)

    def principal(self, cookie: str | None) -> Principal:
        """Blocking (may read the key). NotSignedIn unless the session and its key are good."""
        if not cookie:
            raise NotSignedIn("Not signed in")
        try:
            claims = jwt.decode(
                cookie,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE,
                options={"require": ["exp", "sub", "scope", "kid"]},
            )
        except jwt.PyJWTError:
            raise NotSignedIn("The session is not valid or has expired; sign in again") from None
        key_id = str(claims["kid"])
        if not self._key_is_live(key_id, str(claims["sub"])):
            raise NotSignedIn("The key of this session was revoked; sign in again")
        return Principal(str(claims["sub"]), frozenset(str(claims["scope"]).split()), key_id)

    def _key_is_live(self, key_id: str, tenant_id: str) -> bool:
        live = self._live.get(key_id)
        if live is None:
            record = self._services.store.keys.by_id(key_id)
            live = record is not None and not record.revoked and record.tenant_id == tenant_id
            self._live.put(key_id, live)
        return live


__all__ = [
    "COOKIE",
    "COOKIE_PATH",
    "CSRF_HEADER",
    "InvalidCredentials",
    "NotSignedIn",
    "Sessions",
    "SignedIn",
]
