"""API keys: generated once, stored only as SHA-256 digests, looked up with a short per-container cache.

Client keys start ``fmc_`` (as in the seeds), admin keys ``fma_``. A revoked key stops working within
``cache_seconds`` (default 60) on containers that had it cached, and at once everywhere else.

A key may carry an expiry: past it, it is refused (cached or not), as if revoked.

A client key may be bound to one end user: it then acts for that user only, whatever ``X-Muxi-User-Id`` says
(a different user is refused), so a holder of the key cannot read or cancel other users' requests. An
unbound key is MUXI's model: a trusted backend names the user in the header.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from cachetools import TTLCache

from asyncagents.domain.errors import BadRequest, Forbidden, NotFound, Unauthorized
from asyncagents.domain.ports import KeyStore
from asyncagents.domain.times import iso, parse_iso, utc_now

KEY_PREFIXES = {"client": "fmc_", "admin": "fma_"}
logger = logging.getLogger(__name__)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class KeyLimits:
    """A key's own limits, in place of the formation's ``limits`` (``None``: the formation's; 0: none)."""

    requests_per_second: int | None = None
    max_active_requests: int | None = None

    def stored(self) -> dict[str, int]:
        return {name: value for name, value in asdict(self).items() if value is not None}


LIMIT_NAMES = ("requests_per_second", "max_active_requests")
NO_KEY_LIMITS = KeyLimits()


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    kind: str
    user_id: str | None = None  # the one end user a bound client key (or a verified token) acts for
    expires_at: datetime | None = None
    verified_token: bool = False  # a JWT API Gateway verified: its user is the caller, whatever a header says
    limits: KeyLimits = NO_KEY_LIMITS


BOUND_KEYS_ONLY = (
    "this API verifies end users (auth.jwt): call it with Authorization: Bearer <token> on the JWT API, or with "
    "a client key bound to one user"
)


def token_caller(user_id: str) -> ApiKey:
    """The caller behind a verified JWT: scoped like a key of its own per user (``jwt:<user>``), so its requests,
    and its limits, are that user's alone."""
    return ApiKey(key_id=f"jwt:{user_id}", kind="client", user_id=user_id, verified_token=True)


@dataclass(frozen=True)
class KeyInfo:
    """What the listing shows of a key (never its secret)."""

    key_id: str
    kind: str
    label: str
    created_at: str
    user_id: str | None = None
    expires_at: str | None = None
    revoked_at: str | None = None
    last_used_at: str | None = None  # to the hour: a use is recorded when its last one is an hour old
    signs_webhooks: bool = False  # its requests' webhooks are signed with a secret of its own
    requests_per_second: int | None = None  # its own limits (None: the formation's)
    max_active_requests: int | None = None


# A key's use is recorded when the last one recorded is older than this: the listing says "last used" to the hour
# at the price of one write per key, hour and container (and only when the key was not in the container's cache).
LAST_USED_RESOLUTION = timedelta(hours=1)


@dataclass(frozen=True)
class CreatedKey:
    key_id: str
    kind: str
    secret: str
    user_id: str | None = None
    expires_at: datetime | None = None
    webhook_secret: str | None = None  # shown once, like the key


class KeyService:
    """Creates, revokes and checks API keys."""

    def __init__(
        self,
        store: KeyStore,
        *,
        cache_seconds: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = utc_now,
        bound_keys_only: bool = False,
    ) -> None:
        self._store = store
        self._clock = clock
        self._bound_keys_only = bound_keys_only
        self._cache: TTLCache[str, ApiKey] = TTLCache(maxsize=1024, ttl=cache_seconds, timer=monotonic)
        # A key's webhook secret never changes: the sender keeps what it read (None: the stack's secret signs).
        self._webhook_secrets: TTLCache[str, str | None] = TTLCache(maxsize=1024, ttl=3600, timer=monotonic)
        self._lock = threading.Lock()

    def create(
        self,
        kind: str,
        *,
        label: str = "",
        secret: str | None = None,
        user_id: str | None = None,
        expires_at: datetime | None = None,
        webhook_secret: bool = False,
        limits: KeyLimits | None = None,
    ) -> CreatedKey:
        """Store a new key and return its secret (shown once). ``secret`` lets the local stack use a
        key given in its environment; ``user_id`` binds a client key to one end user; past ``expires_at``
        the key is refused; ``webhook_secret`` gives a client key a webhook signing secret of its own (shown
        once too), so that its receivers verify with a secret no other key's receivers have; ``limits`` replace
        the formation's for this key."""
        if kind not in KEY_PREFIXES:
            raise BadRequest(f"kind: must be one of {sorted(KEY_PREFIXES)}", details={"field": "kind"})
        if user_id is not None and kind != "client":
            raise BadRequest("user_id: only a client key can be bound to a user", details={"field": "user_id"})
        if expires_at is not None and expires_at <= self._clock():
            raise BadRequest("expires_at: must be in the future", details={"field": "expires_at"})
        if webhook_secret and kind != "client":
            raise BadRequest(
                "webhook_secret: only a client key's requests send webhooks", details={"field": "webhook_secret"}
            )
        from asyncagents.domain.webhooks.signing import new_signing_secret  # only keys that sign their webhooks

        signing = new_signing_secret() if webhook_secret else None
        secret = secret or KEY_PREFIXES[kind] + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(8)
        self._store.put_key(
            secret_hash=hash_secret(secret),
            key_id=key_id,
            kind=kind,
            label=label,
            created_at=iso(self._clock()),
            user_id=user_id,
            expires_at=iso(expires_at) if expires_at else None,
            webhook_secret=signing,
            limits=(limits or NO_KEY_LIMITS).stored(),
        )
        return CreatedKey(
            key_id=key_id, kind=kind, secret=secret, user_id=user_id, expires_at=expires_at, webhook_secret=signing
        )

    def webhook_secret_of(self, key_id: str) -> str | None:
        """The key's own webhook signing secret, if it was made with one (read once an hour per container)."""
        with self._lock:
            if key_id in self._webhook_secrets:
                return self._webhook_secrets[key_id]
        item = self._store.get_key_by_id(key_id) if key_id.startswith("key_") else None
        found = str(item["webhook_secret"]) if item and item.get("webhook_secret") else None
        with self._lock:
            self._webhook_secrets[key_id] = found
        return found

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
        fetched = False
        if key is None:
            item = self._store.get_key(digest)
            if item is None or item.get("revoked_at"):
                raise Unauthorized(f"invalid or revoked {header}", details={"header": header})
            bound, expiry = item.get("user_id"), item.get("expires_at")
            key = ApiKey(
                key_id=str(item["key_id"]),
                kind=str(item["kind"]),
                user_id=str(bound) if bound else None,
                expires_at=parse_iso(str(expiry)) if expiry else None,
                limits=KeyLimits(**{name: int(item[name]) for name in LIMIT_NAMES if name in item}),
            )
            with self._lock:
                self._cache[digest] = key
            fetched = True
        if key.expires_at is not None and self._clock() >= key.expires_at:  # checked on cached keys too
            raise Unauthorized(f"expired {header}", details={"header": header})
        if key.kind != kind:
            raise Forbidden(f"this key cannot be used as {header}", details={"header": header})
        if self._bound_keys_only and kind == "client" and key.user_id is None:
            raise Unauthorized(BOUND_KEYS_ONLY, details={"header": header})
        if fetched:  # not at every call: once per key and container while it stays cached
            self._record_use(key)
        return key

    def list(self, *, limit: int, cursor: str | None) -> tuple[list[KeyInfo], str | None]:
        """The keys, newest first, revoked and expired ones included, and the next page's cursor."""
        items, next_cursor = self._store.list_keys(limit=limit, cursor=cursor)
        fields = set(KeyInfo.__dataclass_fields__)
        return [
            KeyInfo(**{name: value for name, value in item.items() if name in fields}) for item in items
        ], next_cursor

    def _record_use(self, key: ApiKey) -> None:
        """Best effort: a key that works must not fail a call because its last use could not be written."""
        now = self._clock()
        try:
            self._store.touch_key(key.key_id, used_at=iso(now), stale_before=iso(now - LAST_USED_RESOLUTION))
        except Exception:
            logger.warning("could not record the use of key %s", key.key_id, exc_info=True)


def acting_user(key: ApiKey, named: str | None, default: str) -> str:
    """The end user a call acts for: a verified token's user (a header is ignored), a bound key's own user (naming
    another is refused), else the one named, else ``default``."""
    if key.user_id is None:
        return named or default
    if key.verified_token:
        return key.user_id
    if named and named != key.user_id:
        raise Forbidden(
            "X-Muxi-User-Id: this key acts for one user only, and it is not this one",
            details={"header": "X-Muxi-User-Id"},
        )
    return key.user_id


@dataclass(frozen=True)
class Principal:
    """Who is calling: the API key (by id, never the secret) and the end user it acts for (and the key's own
    limits, when it has some)."""

    key_id: str
    user_id: str
    kind: str = "client"
    limits: KeyLimits = NO_KEY_LIMITS
