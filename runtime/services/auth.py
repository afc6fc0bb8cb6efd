"""Credentials: API keys `grey_api_key_{tenant}_{random}` (stored as SHA-256) and JWTs.

Keys carry 192 random bits, so a plain SHA-256 is the right hash: it cannot be brute-forced
and costs microseconds per request, unlike a password hash. Tokens from `POST /v1/auth/token`
are HS256 JWTs signed with a secret kept in the store, so every gateway sharing the store
accepts them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta

import jwt

from runtime.api.context import Principal
from runtime.api.errors import ApiError
from runtime.store import Store

KEY_PREFIX = "grey_api_key_"
SCOPES = frozenset(
    {"tasks:read", "tasks:write", "cluster:read", "cluster:admin", "security:read", "security:admin"}
)
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_AUDIENCE = "grey"
_ALGORITHM = "HS256"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def mint_key(tenant_id: str) -> str:
    if not TENANT_PATTERN.match(tenant_id):
        raise ValueError("tenant ids are 1-64 letters, digits or '-'")
    return f"{KEY_PREFIX}{tenant_id}_{secrets.token_hex(24)}"


def parse_scopes(scopes: list[str] | str) -> frozenset[str]:
    items = scopes.split(",") if isinstance(scopes, str) else scopes
    chosen = frozenset(s.strip() for s in items if s.strip())
    unknown = chosen - SCOPES
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")
    return chosen


class CredentialCache:
    """Principals of recently seen API keys, for a few seconds (revocation lag ≤ ttl)."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key_hash: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key_hash] = (time.monotonic() + self._ttl, principal)


class Authenticator:
    def __init__(self, store: Store, token_ttl_seconds: int, cache_seconds: float) -> None:
        self._store = store
        self._ttl = token_ttl_seconds
        self._cache = CredentialCache(cache_seconds)
        self._secret = store.settings.get_or_create("jwt_secret", lambda: secrets.token_urlsafe(48))

    def cached(self, credential: str) -> Principal | None:
        """The principal without touching the store, when the answer is known already."""
        if credential.startswith(KEY_PREFIX):
            return self._cache.get(hash_key(credential))
        return self._verify_token(credential)

    def authenticate(self, credential: str) -> Principal:
        """Blocking: may read the store. Raises `unauthorized`."""
        principal = self.cached(credential)
        if principal is not None:
            return principal
        if not credential.startswith(KEY_PREFIX):
            raise ApiError("unauthorized", "Invalid or expired token")
        key_hash = hash_key(credential)
        record = self._store.keys.by_hash(key_hash)
        if record is None or record.revoked:
            raise ApiError("unauthorized", "Invalid API key")
        principal = Principal(record.tenant_id, frozenset(record.scopes), record.key_id)
        self._cache.put(key_hash, principal)
        return principal

    def _verify_token(self, token: str) -> Principal | None:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE,
                options={"require": ["exp", "sub", "scope"]},
            )
        except jwt.PyJWTError:
            return None
        return Principal(claims["sub"], frozenset(claims["scope"].split()), claims.get("kid", "jwt"))

    def issue_token(self, tenant_id: str, secret: str) -> tuple[str, datetime]:
        """Blocking. Exchanges one of the tenant's API keys for a short-lived JWT."""
        try:
            principal = self.authenticate(secret) if secret.startswith(KEY_PREFIX) else None
        except ApiError:
            principal = None
        if principal is None or principal.tenant_id != tenant_id:
            raise ApiError("unauthorized", "Unknown workspace or wrong secret")
        expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=self._ttl)
        claims = {
            "sub": tenant_id,
            "scope": " ".join(sorted(principal.scopes)),
            "aud": _AUDIENCE,
            "exp": expires_at,
            "iat": datetime.now(UTC),
            "kid": principal.credential_id,
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM), expires_at

    def create_key(self, tenant_id: str, scopes: frozenset[str], description: str = "") -> str:
        """Blocking. Mints a key, stores its hash, returns the key (shown once)."""
        key = mint_key(tenant_id)
        self._store.keys.add(tenant_id, hash_key(key), sorted(scopes), description)
        return key
