"""API keys: only digests stored, kinds enforced, revocation, lookup caching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from asyncagents.domain.auth import ApiKey, KeyService, acting_user, hash_secret
from asyncagents.domain.errors import BadRequest, Forbidden, NotFound, Unauthorized

from .fakes import InMemoryStore


def test_keys_are_stored_hashed_and_authenticate_by_kind():
    # Given a new client key
    store = InMemoryStore()
    service = KeyService(store)
    created = service.create("client", label="ci")
    # Then its secret is shown once and only its digest is stored
    assert created.secret.startswith("fmc_")
    assert created.secret not in repr(store.keys)
    assert hash_secret(created.secret) in store.keys

    # And it authenticates as what it is, and as nothing else
    assert service.authenticate(created.secret, kind="client").key_id == created.key_id
    with pytest.raises(Forbidden):
        service.authenticate(created.secret, kind="admin")
    with pytest.raises(Unauthorized, match="X-Muxi-Client-Key"):
        service.authenticate(None, kind="client")
    with pytest.raises(Unauthorized):
        service.authenticate("fmc_wrong", kind="client")


def test_a_key_bound_to_a_user_acts_for_that_user_only():
    # Given a client key bound to bob, and an unbound one
    store = InMemoryStore()
    service = KeyService(store)
    bound = service.authenticate(service.create("client", user_id="bob").secret, kind="client")
    unbound = service.authenticate(service.create("client").secret, kind="client")
    assert bound.user_id == "bob" and unbound.user_id is None
    # Then the bound key acts for bob whether or not the caller names him, and never for anyone else
    assert acting_user(bound, None, "default") == "bob"
    assert acting_user(bound, "bob", "default") == "bob"
    with pytest.raises(Forbidden, match="X-Muxi-User-Id"):
        acting_user(bound, "alice", "default")
    # While an unbound key acts for whoever the trusted caller names (MUXI's model)
    assert acting_user(unbound, "alice", "default") == "alice"
    assert acting_user(unbound, None, "default") == "default"
    # And only client keys can be bound
    with pytest.raises(BadRequest, match="user_id"):
        service.create("admin", user_id="bob")
    assert acting_user(ApiKey("key_x", "client"), None, "d") == "d"


def test_an_expired_key_is_refused_even_when_cached():
    # Given a key that expires in an hour, used (and cached) now
    store = InMemoryStore()
    now = [datetime(2026, 11, 30, 12, 0, tzinfo=UTC)]
    service = KeyService(store, clock=lambda: now[0], monotonic=lambda: 0.0)
    created = service.create("client", expires_at=now[0] + timedelta(hours=1))
    assert service.authenticate(created.secret, kind="client").expires_at == created.expires_at
    # When the hour has passed, it is refused at once, cache or not
    now[0] += timedelta(hours=1)
    with pytest.raises(Unauthorized, match="expired X-Muxi-Client-Key"):
        service.authenticate(created.secret, kind="client")
    assert store.calls.count("get_key") == 1  # the refusal came from the cached key
    # And a key cannot be created already expired
    with pytest.raises(BadRequest, match="expires_at: must be in the future"):
        service.create("client", expires_at=now[0])


def test_lookups_are_cached_and_revocation_takes_effect():
    store = InMemoryStore()
    now = [0.0]
    service = KeyService(store, cache_seconds=60, monotonic=lambda: now[0])
    secret = service.create("admin").secret
    # When a key is used three times within the cache time, the store is read once
    for _ in range(3):
        service.authenticate(secret, kind="admin")
    assert store.calls.count("get_key") == 1

    # When it is revoked here, this container stops accepting it at once
    key_id = service.authenticate(secret, kind="admin").key_id
    service.revoke(key_id)
    with pytest.raises(Unauthorized):
        service.authenticate(secret, kind="admin")
    with pytest.raises(NotFound):
        service.revoke("key_unknown")


def test_another_container_sees_revocation_after_cache_expiry():
    store = InMemoryStore()
    now = [0.0]
    # Given two containers, the reader having used the key
    writer, reader = KeyService(store), KeyService(store, cache_seconds=60, monotonic=lambda: now[0])
    created = writer.create("client")
    reader.authenticate(created.secret, kind="client")
    # When the other container revokes it, the reader accepts it until its cache entry expires, not after
    writer.revoke(created.key_id)
    reader.authenticate(created.secret, kind="client")  # still cached: documented bound
    now[0] = 61
    with pytest.raises(Unauthorized):
        reader.authenticate(created.secret, kind="client")


def test_a_use_is_recorded_when_the_key_is_fetched_not_at_every_call_and_never_fails_one():
    store = InMemoryStore()
    service = KeyService(store, cache_seconds=60, monotonic=lambda: 0.0)
    created = service.create("client")
    expired = service.create("client", expires_at=datetime.now(UTC) + timedelta(seconds=1))
    for _ in range(3):
        service.authenticate(created.secret, kind="client")
    assert store.calls.count("touch_key") == 1  # cached afterwards
    # A key that is refused is not "used"
    with pytest.raises(Forbidden):
        KeyService(store).authenticate(created.secret, kind="admin")
    assert store.calls.count("touch_key") == 1
    # And a store that cannot record the use does not fail the call
    store.touch_key = lambda *args, **kwargs: (_ for _ in ()).throw(RuntimeError("throttled"))
    assert KeyService(store).authenticate(expired.secret, kind="client").key_id == expired.key_id


def test_where_end_users_are_verified_only_a_bound_client_key_acts():
    store = InMemoryStore()
    service = KeyService(store, bound_keys_only=True)
    unbound, bound = service.create("client"), service.create("client", user_id="ann")
    admin = service.create("admin")
    with pytest.raises(Unauthorized, match="verifies end users"):
        service.authenticate(unbound.secret, kind="client")
    assert service.authenticate(bound.secret, kind="client").user_id == "ann"
    assert service.authenticate(admin.secret, kind="admin").kind == "admin"


def test_a_verified_tokens_user_is_the_caller_whatever_a_header_names():
    from asyncagents.domain.auth import token_caller

    caller = token_caller("ann")
    assert (caller.key_id, acting_user(caller, "bob", "default")) == ("jwt:ann", "ann")


def test_an_audit_record_that_cannot_be_written_never_fails_the_call(caplog):
    from asyncagents.domain.audit import Audit

    class Broken:
        def append(self, entry, *, forget_at):
            raise RuntimeError("DynamoDB is down")

        def page(self, *, limit, cursor):
            return [], None

    Audit(Broken(), retention_days=1, clock=lambda: datetime(2026, 1, 1, tzinfo=UTC)).record(
        key_id="key_a", action="DELETE /v1/admin/keys/key_b", status=200, request_id="r1"
    )
    assert "could not write the audit record" in caplog.text and "key_b" in caplog.text
