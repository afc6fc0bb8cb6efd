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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

import jwt

from runtime.services.ratelimit import RateLimiter
from runtime.store import ApiKeyRecord, Store

KEY_PREFIX = "grey_api_key_"
#: `cluster:admin` acts on the caller's own tenant; `platform:admin` (the operator's) on any.
PLATFORM_SCOPE = "platform:admin"
SCOPES = frozenset(
    {
        "tasks:read",
        "tasks:write",
        "cluster:read",
        "cluster:admin",
        "security:read",
        "security:admin",
        "platform:admin",
        "containers:run",  # CloudAI's submit: running a container image is more than a task
    }
)
#: What a credential-less CloudAI call may do when the operator names an anonymous tenant.
CLOUDAI_ANONYMOUS_SCOPES = frozenset({"tasks:read", "tasks:write", "containers:run", "cluster:read"})
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_AUDIENCE = "grey"
_ALGORITHM = "HS256"

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a tenant and the scopes its credential grants."""

    tenant_id: str
    scopes: frozenset[str]
    credential_id: str


class InvalidCredentials(Exception):
    """The key or token is unknown, revoked, expired or not the workspace's."""


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


class TtlCache(Generic[V]):
    """Answers learned from the store, kept `ttl` seconds: the bound on revocation lag."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[str, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: str, value: V) -> None:
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self._ttl, value)


class Authenticator:
    """Checks keys and tokens; a token is good only while the key it came from is.

    A revoked or deleted key stops working, as a key and through every token minted from it,
    within `cache_seconds`. A token's signature and claims are checked once per
    `cache_seconds` (the check costs ~0.1 ms; the answer is kept by the token's SHA-256, never
    past the token's `exp`); whether its key is still live, on every call as before. Failed
    attempts are counted per client address (`auth_failures` of the rate limits): past the limit
    every attempt from that address is refused (`RateLimited`) until the window has room, so
    guessing keys costs a window per batch.
    """

    def __init__(
        self, store: Store, token_ttl_seconds: int, cache_seconds: float, limiter: RateLimiter | None = None
    ) -> None:
        self._store = store
        self._ttl = token_ttl_seconds
        self._principals: TtlCache[Principal] = TtlCache(cache_seconds)  # by key hash
        self._live_keys: TtlCache[bool] = TtlCache(cache_seconds)  # by key id, for tokens
        self._tokens: TtlCache[tuple[Principal, float]] = TtlCache(cache_seconds)  # by token hash
        self._limiter = limiter
        self._secret = store.settings.get_or_create("jwt_secret", lambda: secrets.token_urlsafe(48))

    def cached(self, credential: str) -> Principal | None:
        """The principal without touching the store, when the answer is known already."""
        if credential.startswith(KEY_PREFIX):
            return self._principals.get(hash_key(credential))
        principal = self._verify_token(credential)
        if principal is None or not self._live_keys.get(principal.credential_id):
            return None
        return principal

    def authenticate(self, credential: str, client: str = "") -> Principal:
        """Blocking: may read the store. Raises InvalidCredentials, or RateLimited for a client
        past its failures."""
        principal = self.cached(credential)
        if principal is not None:
            return principal
        if self._limiter is not None:
            self._limiter.refuse_if_spent(client, "auth_failures")
        try:
            return self._from_store(credential)
        except InvalidCredentials:
            if self._limiter is not None:
                self._limiter.count(client, "auth_failures")
            raise

    def _from_store(self, credential: str) -> Principal:
        if not credential.startswith(KEY_PREFIX):
            principal = self._verify_token(credential)
            if principal is None or not self._key_is_live(principal.credential_id):
                raise InvalidCredentials("Invalid or expired token")
            return principal
        key_hash = hash_key(credential)
        record = self._store.keys.by_hash(key_hash)
        if record is None or record.revoked:
            raise InvalidCredentials("Invalid API key")
        principal = Principal(record.tenant_id, frozenset(record.scopes), record.key_id)
        self._principals.put(key_hash, principal)
        self._live_keys.put(record.key_id, True)
        return principal

    def _key_is_live(self, key_id: str) -> bool:
        record = self._store.keys.by_id(key_id)
        live = record is not None and not record.revoked
        self._live_keys.put(key_id, live)
        return live

    def _verify_token(self, token: str) -> Principal | None:
        """The token's principal when its signature and claims hold now (PyJWT's checks, kept
        `cache_seconds` by the token's hash and only while `exp` is ahead); else None."""
        digest = hash_key(token)
        known = self._tokens.get(digest)
        if known is not None and time.time() < known[1]:  # PyJWT: expired once exp <= now
            return known[0]
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE,
                options={"require": ["exp", "sub", "scope", "kid"]},
            )
        except jwt.PyJWTError:
            return None
        principal = Principal(claims["sub"], frozenset(claims["scope"].split()), claims["kid"])
        self._tokens.put(digest, (principal, float(int(claims["exp"]))))
        return principal

    def issue_token(self, tenant_id: str, secret: str, client: str = "") -> tuple[str, datetime]:
        """Blocking. Exchanges one of the tenant's API keys for a short-lived JWT."""
        if self._limiter is not None:
            self._limiter.refuse_if_spent(client, "auth_failures")
        try:
            principal = self._from_store(secret) if secret.startswith(KEY_PREFIX) else None
        except InvalidCredentials:
            principal = None
        if principal is None or principal.tenant_id != tenant_id:
            if self._limiter is not None:
                self._limiter.count(client, "auth_failures")
            raise InvalidCredentials("Unknown workspace or wrong secret")
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
        return self.mint(tenant_id, scopes, description)[0]

    def mint(self, tenant_id: str, scopes: frozenset[str], description: str = "") -> tuple[str, ApiKeyRecord]:
        """Blocking. `create_key`, with the stored record (its id, for revoking)."""
        key = mint_key(tenant_id)
        return key, self._store.keys.add(tenant_id, hash_key(key), sorted(scopes), description)

    def revoke(self, tenant_id: str | None, key_id: str) -> bool:
        """Blocking. Revokes the key if it is the tenant's (any tenant's for None); its tokens
        stop within the cache bound. False when there is no such key."""
        record = self._store.keys.by_id(key_id)
        if record is None or (tenant_id is not None and record.tenant_id != tenant_id):
            return False
        return self._store.keys.revoke(key_id)
