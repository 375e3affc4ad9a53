"""Providers' webhook signatures, checked on the raw body with the standard library's HMAC.

Each scheme as its provider documents it (the tests use the providers' own examples):

- GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`` (``X-GitHub-Delivery`` is not signed).
- Stripe: ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`` (any v1 may match; the whole
  ``whsec_...`` string is the key); the delivery is the event's ``id``.
- Slack: ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:ts:body">`` with ``X-Slack-Request-Timestamp``.
- Standard Webhooks: ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.ts.body">`` (space-separated, any
  may match), the key being the base64 after ``whsec_``; the delivery is ``webhook-id``.
- hmac: an HMAC of the body (sha1/sha256/sha512, hex or base64, an optional prefix) in a header the
  definition names.

Comparisons are constant-time; every failure is ``Unauthorized`` naming the header (the API answers 401).
Several secrets may be live at once (during a rotation): any one of them proves the sender.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import Any

from asyncagents.domain.errors import Unauthorized, Unavailable
from asyncagents.trigger_definitions import Verification

Headers = Mapping[str, str]  # names in lower case

# The header that carries each provider's signature, as the provider spells it (named in 401s).
SIGNATURE_HEADERS = {
    "github": "X-Hub-Signature-256",
    "stripe": "Stripe-Signature",
    "slack": "X-Slack-Signature",
    "standard-webhooks": "webhook-signature",
}


def signature_header(scheme: Verification) -> str:
    return scheme.header if scheme.provider == "hmac" and scheme.header else SIGNATURE_HEADERS[scheme.provider]


def signed_delivery_id(scheme: Verification, headers: Headers, payload: Any) -> str | None:
    """The provider's name for a delivery, when its signature covers it (a retry repeats it; a replay cannot
    change it): Standard Webhooks' ``webhook-id``, a Stripe event's ``id``, a Slack event's ``event_id``.
    GitHub's ``X-GitHub-Delivery`` is not signed, so it names nothing (the caller uses the body instead)."""
    if scheme.provider == "standard-webhooks":
        return headers.get("webhook-id") or None
    field = {"stripe": "id", "slack": "event_id"}.get(scheme.provider)
    if field and isinstance(payload, dict) and isinstance(payload.get(field), str) and payload[field]:
        return str(payload[field])
    return None


def verify(scheme: Verification, headers: Headers, body: bytes, secrets: list[str], *, now: float) -> None:
    """Return when one of ``secrets`` signed ``body`` as ``scheme`` says; raise ``Unauthorized`` otherwise."""
    header = signature_header(scheme)
    given = _required(headers, header)
    secrets = [secret for secret in secrets if secret]
    if not secrets:  # an empty key would be a signature anyone can make
        raise Unavailable("the trigger has no signing secret set")
    if scheme.provider == "github":
        expected = [b"sha256=" + _hex("sha256", secret.encode(), body) for secret in secrets]
        _match(header, [given.encode()], expected)
    elif scheme.provider == "stripe":
        _verify_stripe(scheme, given, body, secrets, now)
    elif scheme.provider == "slack":
        stamp = _timestamp(headers, "X-Slack-Request-Timestamp", scheme.tolerance_seconds, now)
        signed = b"v0:" + stamp.encode() + b":" + body
        _match(header, [given.encode()], [b"v0=" + _hex("sha256", s.encode(), signed) for s in secrets])
    elif scheme.provider == "standard-webhooks":
        message_id = _required(headers, "webhook-id")
        stamp = _timestamp(headers, "webhook-timestamp", scheme.tolerance_seconds, now)
        signed = f"{message_id}.{stamp}.".encode() + body
        expected = [base64.b64encode(_digest("sha256", _standard_key(s), signed)) for s in secrets]
        offered = [part.split(",", 1)[1].encode() for part in given.split() if part.startswith("v1,")]
        _match(header, offered, expected)
    else:
        algorithm = scheme.algorithm
        prefix = scheme.prefix.encode()
        if scheme.encoding == "hex":
            expected = [prefix + _hex(algorithm, s.encode(), body) for s in secrets]
        else:
            expected = [prefix + base64.b64encode(_digest(algorithm, s.encode(), body)) for s in secrets]
        _match(header, [given.encode()], expected)


def _verify_stripe(scheme: Verification, given: str, body: bytes, secrets: list[str], now: float) -> None:
    header = SIGNATURE_HEADERS["stripe"]
    items = [part.split("=", 1) for part in given.split(",") if "=" in part]
    stamps = [value for key, value in items if key.strip() == "t"]
    offered = [value.strip().encode() for key, value in items if key.strip() == "v1"]
    if len(stamps) != 1 or not _unix_time(stamps[0].strip()) or not offered:
        raise Unauthorized(f"{header}: expected t=<timestamp> and v1=<signature>", details={"header": header})
    stamp = stamps[0].strip()
    _within(header, int(stamp), scheme.tolerance_seconds, now)
    signed = stamp.encode() + b"." + body
    _match(header, offered, [_hex("sha256", s.encode(), signed) for s in secrets])


def _required(headers: Headers, name: str) -> str:
    value = headers.get(name.lower())
    if not value:
        raise Unauthorized(f"missing {name} header", details={"header": name})
    return value


def _timestamp(headers: Headers, name: str, tolerance: int, now: float) -> str:
    value = _required(headers, name).strip()
    if not _unix_time(value):
        raise Unauthorized(f"{name}: not a Unix timestamp", details={"header": name})
    _within(name, int(value), tolerance, now)
    return value


def _unix_time(value: str) -> bool:
    # ASCII digits only ("²".isdigit() is true), and a length a clock can have.
    return value.isascii() and value.isdecimal() and len(value) <= 12


def _within(header: str, stamp: int, tolerance: int, now: float) -> None:
    # Both ways: an old signature is a replay, one from the future a clock we cannot trust.
    if abs(now - stamp) > tolerance:
        raise Unauthorized(
            f"{header}: the timestamp is more than {tolerance} s from now (a replay, or a clock off)",
            details={"header": header, "tolerance_seconds": tolerance},
        )


def _match(header: str, offered: list[bytes], expected: list[bytes]) -> None:
    # Every pair is compared (no early exit), each in constant time.
    matched = False
    for candidate in offered:
        for wanted in expected:
            matched |= hmac.compare_digest(candidate, wanted)
    if not matched:
        raise Unauthorized(f"{header}: the signature does not match", details={"header": header})


def _digest(algorithm: str, key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, algorithm).digest()


def _hex(algorithm: str, key: bytes, message: bytes) -> bytes:
    return _digest(algorithm, key, message).hex().encode()


def _standard_key(secret: str) -> bytes:
    # A bad secret is ours to fix (503, the provider retries), never a signature anyone could make (an empty key).
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise Unavailable("the trigger's Standard Webhooks secret must be whsec_ followed by non-empty base64")
    return key
