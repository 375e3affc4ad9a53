"""``X-Muxi-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">``, as seeds/000 specifies.

During a secret rotation the header carries one ``v1`` per live secret. ``verify_signature`` accepts any
matching entry. MUXI's own helper reads only the last ``v1``, so the previous secret's signature is put
last: receivers that have not switched yet keep working with either helper.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

from pydantic import ConfigDict, Field

from asyncagents.model_base import LazyModel

SIGNATURE_HEADER = "X-Muxi-Signature"


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    """The one MAC both signature schemes use."""
    return hmac.new(key, message, hashlib.sha256).digest()


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return _hmac_sha256(secret.encode(), f"{timestamp}.".encode() + body).hex()


def standard_webhook_headers(body: bytes, message_id: str, timestamp: int, secrets: Sequence[str]) -> dict[str, str]:
    """Standard Webhooks headers (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``): one ``v1,``
    signature of ``"{id}.{timestamp}.{body}"`` per secret."""
    message = f"{message_id}.{timestamp}.".encode() + body
    signatures = " ".join("v1," + base64.b64encode(_hmac_sha256(_standard_key(s), message)).decode() for s in secrets)
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": signatures}


def _standard_key(secret: str) -> bytes:
    """Standard Webhooks keys are the base64 after ``whsec_``; any other secret signs with its own bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except ValueError:
            pass
    return secret.encode()


def sign(body: bytes, secrets: Sequence[str], *, timestamp: int | None = None) -> str:
    """The signature header for ``body``: one ``v1`` per secret, in the order given."""
    if not secrets:
        raise ValueError("at least one signing secret is required")
    moment = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={moment}", *(f"v1={_mac(secret, moment, body)}" for secret in secrets)])


def verify_signature(
    body: bytes | str,
    header: str | None,
    secret: str,
    tolerance_seconds: int = 300,
    *,
    now: float | None = None,
) -> bool:
    """True when ``header`` signs exactly ``body`` with ``secret`` within ``tolerance_seconds`` of now.

    Constant-time comparison; any ``v1`` entry may match; a malformed header is simply ``False``.
    """
    if not header or not secret:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif name == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    payload = body.encode() if isinstance(body, str) else body
    expected = _mac(secret, timestamp, payload)
    matched = False
    for candidate in candidates:  # no early exit: the time taken does not depend on which entry matched
        matched |= hmac.compare_digest(expected, candidate)
    return matched


class ContentItem(LazyModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None
    file: dict[str, Any] | None = None


class WebhookError(LazyModel):
    model_config = ConfigDict(extra="allow")
    code: str
    message: str
    retryable: bool = False


class WebhookEvent(LazyModel):
    """A webhook as we send it (seeds/000 "Webhook Payload Structure")."""

    model_config = ConfigDict(extra="allow")
    id: str
    status: str
    timestamp: int
    response: list[ContentItem] = Field(default_factory=list)
    error: WebhookError | None = None
    clarification: dict[str, Any] | None = None
    formation_id: str | None = None
    user_id: str | None = None
    processing_time: float | None = None
    processing_mode: str = "async"


def parse(body: bytes | str | dict[str, Any]) -> WebhookEvent:
    """Parse a webhook body into a typed ``WebhookEvent`` (raises ``ValueError`` on a bad body)."""
    data = body if isinstance(body, dict) else json.loads(body)
    return WebhookEvent.model_validate(data)


def new_signing_secret() -> str:
    """``whsec_`` and 32 random bytes in standard base64: usable as is for X-Muxi-Signature, and decodable
    as the key of Standard Webhooks signatures."""
    import secrets

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
