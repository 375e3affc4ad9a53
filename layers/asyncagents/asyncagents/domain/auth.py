"""API keys: generated once, stored only as SHA-256 digests, looked up with a short per-container cache.

Client keys start ``fmc_`` (as in the seeds), admin keys ``fma_``. A revoked key stops working within
``cache_seconds`` (default 60) on containers that had it cached, and at once everywhere else.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache

from asyncagents.domain.errors import BadRequest, Forbidden, NotFound, Unauthorized
from asyncagents.domain.ports import KeyStore
from asyncagents.domain.times import iso, utc_now

KEY_PREFIXES = {"client": "fmc_", "admin": "fma_"}


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    kind: str


@dataclass(frozen=True)
class CreatedKey:
    key_id: str
    kind: str
    secret: str


class KeyService:
    """Creates, revokes and checks API keys."""

    def __init__(
        self,
        store: KeyStore,
        *,
        cache_seconds: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._cache: TTLCache[str, ApiKey] = TTLCache(maxsize=1024, ttl=cache_seconds, timer=monotonic)
        self._lock = threading.Lock()

    def create(self, kind: str, *, label: str = "", secret: str | None = None) -> CreatedKey:
        """Store a new key and return its secret (shown once). ``secret`` lets the local stack use a
        key given in its environment."""
        if kind not in KEY_PREFIXES:
            raise BadRequest(f"kind: must be one of {sorted(KEY_PREFIXES)}", details={"field": "kind"})
        secret = secret or KEY_PREFIXES[kind] + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(8)
        self._store.put_key(
            secret_hash=hash_secret(secret), key_id=key_id, kind=kind, label=label, created_at=iso(utc_now())
        )
        return CreatedKey(key_id=key_id, kind=kind, secret=secret)

    def revoke(self, key_id: str) -> None:
        if not self._store.revoke_key(key_id, revoked_at=iso(utc_now())):
            raise NotFound(f"key {key_id} not found")
        with self._lock:
            self._cache.clear()

    def authenticate(self, secret: str | None, *, kind: str) -> ApiKey:
        """The key behind ``secret`` if it is live and of ``kind``; otherwise ``Unauthorized``/``Forbidden``."""
        header = "X-Muxi-Admin-Key" if kind == "admin" else "X-Muxi-Client-Key"
        if not secret:
            raise Unauthorized(f"missing {header} header", details={"header": header})
        digest = hash_secret(secret)
        with self._lock:
            key = self._cache.get(digest)
        if key is None:
            item = self._store.get_key(digest)
            if item is None or item.get("revoked_at"):
                raise Unauthorized(f"invalid or revoked {header}", details={"header": header})
            key = ApiKey(key_id=str(item["key_id"]), kind=str(item["kind"]))
            with self._lock:
                self._cache[digest] = key
        if key.kind != kind:
            raise Forbidden(f"this key cannot be used as {header}", details={"header": header})
        return key


@dataclass(frozen=True)
class Principal:
    """Who is calling: the API key (by id, never the secret) and the end user it acts for."""

    key_id: str
    user_id: str
    kind: str = "client"
